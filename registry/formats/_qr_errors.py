"""The errors of the QR formats: one message per kind of fault, in Chinese first (a verifier's screen shows
them). Shared by the Base45 codec, the offline payload and its LZ2 wire format.
"""

from __future__ import annotations

from registry.errors import PayloadFormatError

NOT_OURS = "这不是链证电子证照二维码 / Not a Lianzheng certificate QR code"


def invalid(reason: str) -> PayloadFormatError:
    return PayloadFormatError(f"二维码数据无效或已损坏 / invalid QR payload: {reason}", code="invalid_payload")


def truncated(reason: str) -> PayloadFormatError:
    return PayloadFormatError(f"二维码数据不完整（可能未扫全）/ QR payload is truncated: {reason}",
                              code="truncated_payload")
