"""The CLI holder wallet (电子卡包, command line): a folder with the holder's key, encrypted at rest, the
certificates the holder received and the grants the holder made. Folder 0700, every file 0600, written
atomically (a temporary file renamed into place).

Layout::

    <wallet>/key.json                   the holder key (format below)
    <wallet>/certificates/<id>.json     {"identifier", "link" (by-reference QR URL) | null, "document" | null,
                                         "offline" (offline QR text) | null, "added"}
    <wallet>/grants/<digest>.json       {"grant" (signed), "qr", "person_salt" (hex) | null, "status",
                                         "revocation" | null, "added"}

``key.json``::

    {"format": "lianzheng/holder-key/1", "key_id": <hex>, "public_key": <SPKI base64url>,
     "holder_code": <持证主体代码> | null,
     "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": <16 bytes base64url>},
     "cipher": "AES-256-GCM", "nonce": <12 bytes base64url>, "ciphertext": <PKCS#8 DER sealed, base64url>}

The AES-256-GCM key is scrypt(passphrase, salt) (RFC 7914); the associated data is the key id, so a
ciphertext moved under another key id does not open.

>>> import tempfile, pathlib
>>> w = Wallet.create(pathlib.Path(tempfile.mkdtemp()) / "w", "correct horse", scrypt_n=2**10)
>>> Wallet(w.path).unlock("correct horse").public.key_id == w.key_id
True
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from stdnum import exceptions as stdnum_exc
from stdnum.cn import ric

from registry.errors import AuthenticationError, NotFoundError, ValidationError
from registry.holders.keys import HolderKey, HolderPublicKey, b64url_decode, b64url_encode
from registry.identifiers import validate_uscc

__all__ = ["KEY_FORMAT", "Wallet", "load_public_key", "validate_holder_code"]

KEY_FORMAT = "lianzheng/holder-key/1"
KEY_FILE = "key.json"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


def validate_holder_code(code: str) -> str:
    """A 持证主体代码: an 18-character 居民身份证号 (GB 11643) or a USCC (GB 32100), compact."""
    if not isinstance(code, str):
        raise ValidationError("holder code must be a string", code="invalid_holder_code")
    try:
        return str(ric.validate(code))
    except stdnum_exc.ValidationError:
        pass
    try:
        return validate_uscc(code)
    except ValidationError:
        raise ValidationError(f"holder code {code[:20]!r} is neither a resident identity number nor a USCC",
                              code="invalid_holder_code") from None


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _kek(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    if not isinstance(passphrase, str) or not passphrase:
        raise ValidationError("the wallet passphrase must not be empty", code="missing_passphrase")
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Wallet:
    """A wallet folder. `create` makes one; `unlock` opens the key; the rest needs no passphrase."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # -- the key -------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, passphrase: str, *, holder_code: str | None = None,
               key: HolderKey | None = None, scrypt_n: int = SCRYPT_N) -> Wallet:
        """A new wallet with a fresh key (or ``key``); ConflictError-like ValidationError if one exists."""
        path = Path(path)
        if (path / KEY_FILE).exists():
            raise ValidationError(f"{path} already holds a wallet key", code="wallet_exists")
        code = validate_holder_code(holder_code) if holder_code else None
        key = key or HolderKey.generate()
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        key_id = key.public.key_id
        sealed = AESGCM(_kek(passphrase, salt, scrypt_n, SCRYPT_R, SCRYPT_P)).encrypt(nonce, key.pkcs8(),
                                                                                    key_id.encode())
        body = {"format": KEY_FORMAT, "key_id": key_id, "public_key": key.public.spki_b64url, "holder_code": code,
                "kdf": {"name": "scrypt", "n": scrypt_n, "r": SCRYPT_R, "p": SCRYPT_P, "salt": b64url_encode(salt)},
                "cipher": "AES-256-GCM", "nonce": b64url_encode(nonce), "ciphertext": b64url_encode(sealed)}
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        _write_private(path / KEY_FILE, json.dumps(body, indent=2).encode())
        return cls(path)

    def _key_file(self) -> dict[str, Any]:
        try:
            data = json.loads((self.path / KEY_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFoundError(f"no wallet at {self.path} (run `lianzheng holder init`)",
                                code="no_wallet") from None
        except ValueError as exc:
            raise ValidationError(f"{self.path / KEY_FILE} is not JSON: {exc}", code="invalid_wallet") from None
        if not isinstance(data, dict) or data.get("format") != KEY_FORMAT:
            raise ValidationError(f"{self.path / KEY_FILE} is not a {KEY_FORMAT} file", code="invalid_wallet")
        return data

    @property
    def key_id(self) -> str:
        return str(self._key_file()["key_id"])

    @property
    def public(self) -> HolderPublicKey:
        return HolderPublicKey.from_b64url(self._key_file()["public_key"])

    @property
    def holder_code(self) -> str | None:
        code = self._key_file().get("holder_code")
        return code if isinstance(code, str) else None

    def unlock(self, passphrase: str) -> HolderKey:
        """The private key; AuthenticationError(code="wrong_passphrase") when the passphrase does not open it."""
        data = self._key_file()
        try:
            kdf = data["kdf"]
            salt = b64url_decode(kdf["salt"], "kdf salt", code="invalid_wallet")
            kek = _kek(passphrase, salt, int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
            nonce = b64url_decode(data["nonce"], "nonce", code="invalid_wallet")
            sealed = b64url_decode(data["ciphertext"], "ciphertext", code="invalid_wallet")
        except (KeyError, TypeError) as exc:
            raise ValidationError(f"{self.path / KEY_FILE} is incomplete: {exc}", code="invalid_wallet") from None
        try:
            key = HolderKey.from_pkcs8(AESGCM(kek).decrypt(nonce, sealed, str(data["key_id"]).encode()))
        except InvalidTag:
            raise AuthenticationError("the passphrase does not open this wallet's key",
                                      code="wrong_passphrase") from None
        if key.public.key_id != data["key_id"]:
            raise ValidationError("the wallet's key does not match its key id", code="invalid_wallet")
        return key

    # -- certificates and grants ------------------------------------------------------------------------
    def _put(self, folder: str, name: str, item: dict[str, Any]) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValidationError(f"invalid wallet entry name {name[:40]!r}", code="invalid_wallet")
        target = self.path / folder / f"{name}.json"
        _write_private(target, json.dumps(item, ensure_ascii=False, indent=2).encode())
        return target

    def _all(self, folder: str) -> list[dict[str, Any]]:
        out = []
        for p in sorted((self.path / folder).glob("*.json")):
            with contextlib.suppress(ValueError):
                out.append(json.loads(p.read_text(encoding="utf-8")))
        return out

    def add_certificate(self, identifier: str, *, link: str | None = None, document: dict[str, Any] | None = None,
                        offline: str | None = None) -> Path:
        return self._put("certificates", identifier, {"identifier": identifier, "link": link, "document": document,
                                                      "offline": offline, "added": _now()})

    def certificates(self) -> list[dict[str, Any]]:
        return self._all("certificates")

    def certificate(self, identifier: str) -> dict[str, Any]:
        for c in self.certificates():
            if c.get("identifier") == identifier:
                return c
        raise NotFoundError(f"the wallet has no certificate {identifier}", code="unknown_certificate")

    def add_grant(self, grant: dict[str, Any], digest: str, *, qr: str, person_salt: bytes | None = None,
                  status: str = "pending") -> Path:
        return self._put("grants", digest, {"digest": digest, "grant": grant, "qr": qr,
                                            "person_salt": None if person_salt is None else person_salt.hex(),
                                            "status": status, "revocation": None, "added": _now()})

    def update_grant(self, digest: str, **changes: Any) -> Path:
        path = self.path / "grants" / f"{digest}.json"
        try:
            item = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFoundError(f"the wallet has no grant {digest}", code="unknown_grant") from None
        item.update(changes)
        return self._put("grants", digest, item)

    def grants(self) -> list[dict[str, Any]]:
        return self._all("grants")


def load_public_key(value: str) -> HolderPublicKey:
    """A holder public key from a wallet folder, a key.json, a PEM file, a file holding base64url, or the
    base64url SPKI itself."""
    path = Path(value)
    try:
        is_dir, is_file = path.is_dir(), path.is_file()
    except OSError:  # a long base64url string is not a path
        is_dir = is_file = False
    if is_dir:
        return Wallet(path).public
    if is_file:
        raw = path.read_bytes()
        if raw.lstrip().startswith(b"-----BEGIN"):
            return HolderPublicKey.from_pem(raw)
        text = raw.decode("utf-8", "replace").strip()
        if text.startswith("{"):
            try:
                return HolderPublicKey.from_b64url(json.loads(text)["public_key"])
            except (ValueError, KeyError, TypeError):
                raise ValidationError(f"{path} has no public_key", code="invalid_holder_key") from None
        return HolderPublicKey.from_b64url(text)
    return HolderPublicKey.from_b64url(value.strip())
