"""Each hosted agency's exchange key (交换密钥, 免证办): a P-256 key grants wrap document keys to
(registry/holders/wrapping.py). Generated on first use, sealed at rest under the node's master key like the
agencies' other secrets (`KeyStore.seal_secret`), and published as a statement signed by the agency's ledger
key (its secp256k1 chain account, EIP-191), so a holder's wallet can check, against the member's accounts on
chain, that the key it wraps to really is that agency's:

    {"type": "LianzhengExchangeKey", "agency": <USCC>, "public_key": <SPKI base64url>, "key_id": <hex>,
     "alg": "ECIES-P256-HKDF-SHA256-A256GCM", "time": <RFC 3339>,
     "proof": {"account": <0x address>, "signature": <0x 65-byte EIP-191 signature over SHA-256 of the RFC 8785
     form without "proof">}}

    >>> keys = ExchangeKeys(node)                                          # doctest: +SKIP
    >>> check_statement(keys.statement(uscc), node.consortium)             # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError

from registry.crypto.hashing import canonical_digest
from registry.crypto.signing import SignatureScheme, recover_or_none
from registry.errors import NotFoundError, ProofError, ValidationError
from registry.holders._time import format_time
from registry.holders.keys import HolderKey, HolderPublicKey
from registry.identifiers import validate_uscc
from registry.node import Node
from registry.store.holder_models import AgencyExchangeKey

__all__ = ["EXCHANGE_KEY_TYPE", "ExchangeKeys", "check_statement"]

EXCHANGE_KEY_TYPE = "LianzhengExchangeKey"
ALGORITHM = "ECIES-P256-HKDF-SHA256-A256GCM"


def _aad(uscc: str) -> bytes:
    return f"lianzheng/exchange-key/1:{uscc}".encode()


class ExchangeKeys:
    def __init__(self, node: Node) -> None:
        self.node = node

    def _row(self, uscc: str, *, create: bool) -> AgencyExchangeKey:
        uscc = validate_uscc(uscc)
        with self.node.db.session() as s:
            row = s.get(AgencyExchangeKey, uscc)
        if row is not None:
            return row
        if not create or not self.node.keys.has_signing_key(uscc):
            raise NotFoundError(f"agency {uscc} is not hosted on this node: ask its own node for its exchange key",
                                code="agency_not_hosted")
        key = HolderKey.generate()
        try:
            with self.node.db.session() as s:
                s.add(AgencyExchangeKey(uscc=uscc, public_key=key.public.spki_der, key_id=key.public.key_id,
                                        key_blob=self.node.keys.seal_secret(key.pkcs8(), _aad(uscc))))
        except IntegrityError:  # another request made it first: use that one
            pass
        with self.node.db.session() as s:
            made = s.get(AgencyExchangeKey, uscc)
        assert made is not None
        return made

    def public(self, uscc: str) -> HolderPublicKey:
        """The agency's exchange public key (made now if the agency is hosted here and has none)."""
        return HolderPublicKey.from_spki(self._row(uscc, create=True).public_key)

    def private(self, uscc: str) -> HolderKey:
        """The hosted agency's exchange private key (to unwrap document keys granted to it)."""
        row = self._row(uscc, create=True)
        return HolderKey.from_pkcs8(self.node.keys.open_secret(row.key_blob, _aad(row.uscc)))

    def statement(self, uscc: str) -> dict[str, Any]:
        """The exchange key, signed by the agency's ledger key."""
        public = self.public(uscc)
        body: dict[str, Any] = {"type": EXCHANGE_KEY_TYPE, "agency": validate_uscc(uscc),
                                "public_key": public.spki_b64url, "key_id": public.key_id, "alg": ALGORITHM,
                                "time": format_time(int(time.time()))}
        signer = self.node.keys.signer(uscc)
        signature = signer.sign(canonical_digest(body), SignatureScheme.EIP191)
        return {**body, "proof": {"account": signer.address, "signature": "0x" + signature.hex()}}


class _Consortium(Protocol):
    def get_member(self, uscc: str) -> Any: ...


def check_statement(statement: Mapping[str, Any], consortium: _Consortium, *,
                    agency: str | None = None) -> HolderPublicKey:
    """The exchange public key of a statement whose signature recovers to a current account of its agency
    (an Active consortium member on chain); ProofError(code="bad_exchange_key") otherwise."""
    if not isinstance(statement, Mapping) or statement.get("type") != EXCHANGE_KEY_TYPE:
        raise ValidationError(f"not a {EXCHANGE_KEY_TYPE} statement", code="invalid_exchange_key")
    proof = statement.get("proof")
    body = {k: v for k, v in statement.items() if k != "proof"}
    uscc = validate_uscc(str(body.get("agency")))
    if agency is not None and uscc != validate_uscc(agency):
        raise ProofError(f"the exchange key is {uscc}'s, not {agency}'s", code="bad_exchange_key")
    public = HolderPublicKey.from_b64url(body.get("public_key"))
    if body.get("key_id") != public.key_id:
        raise ProofError("the exchange key's key_id does not match its key", code="bad_exchange_key")
    try:
        signature = bytes.fromhex(str(proof["signature"]).removeprefix("0x"))  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        raise ProofError("the exchange key statement has no signature", code="bad_exchange_key") from None
    signer = recover_or_none(canonical_digest(body), signature, SignatureScheme.EIP191)
    member = consortium.get_member(uscc)
    if member is None or int(member.status) != 1:
        raise ProofError(f"{uscc} is not an active consortium member", code="bad_exchange_key")
    if signer is None or signer.lower() not in {a.lower() for a in member.accounts}:
        raise ProofError(f"the exchange key statement is not signed by an account of {uscc}",
                         code="bad_exchange_key")
    return public
