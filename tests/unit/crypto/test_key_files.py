"""Agency key files in the gm profile: SM4-CTR + HMAC-SM3 under the master key, checked with OpenSSL alone;
AES-GCM files of the intl profile still open; a wrong master key is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from registry.consortium.key_backends.file_backend import SEALED, SEALED_SM4
from registry.consortium.keys import KeyStore, sm2_raw_public_key
from registry.crypto import sm2
from registry.crypto.profiles import CryptoProfile
from registry.errors import AuthenticationError
from registry.formats.envelope import SM4_KEY_LABEL, sm4_mac_input
from registry.store.db import AgencyKey, AgencySm2Key, Database
from tests.unit.crypto._openssl import needs_openssl, openssl, write

USCC = "11230000MB0000001X"


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'keys.db'}")
    database.migrate()
    return database


def test_gm_store_seals_both_keys_with_sm4_and_intl_files_still_open(db: Database) -> None:
    master = os.urandom(32)
    intl = KeyStore(db, master_key=master, profile=CryptoProfile.INTL)
    old = intl.create_signing_key("91230000MA0000000A")
    gm = KeyStore(db, master_key=master, profile=CryptoProfile.GM)
    account = gm.create_signing_key(USCC)
    with db.session() as s:
        rows = {r.uscc: r.ciphertext[:1] for r in s.scalars(select(AgencyKey))}
        sm2_rows = {r.uscc: r.ciphertext[:1] for r in s.scalars(select(AgencySm2Key))}
    assert rows == {"91230000MA0000000A": SEALED, USCC: SEALED_SM4}
    assert sm2_rows[USCC] == SEALED_SM4
    fresh = KeyStore(db, master_key=master)  # nothing cached: both constructions open
    assert fresh.signing_account(USCC).address == account.address
    assert fresh.signing_account("91230000MA0000000A").address == old.address
    assert sm2_raw_public_key(fresh.sm2_signer(USCC)) == gm.sm2_public_key(USCC)
    assert fresh.bid(USCC).startswith("did:bid:zf")
    with pytest.raises(AuthenticationError):
        KeyStore(db, master_key=os.urandom(32)).sm2_signer(USCC)


@needs_openssl
def test_an_sm4_key_file_decrypts_with_openssl(db: Database, tmp_path: Path) -> None:
    master = os.urandom(32)
    store = KeyStore(db, master_key=master, profile=CryptoProfile.GM)
    signer = store.create_sm2_key(USCC)
    key_id = sm2.raw_public_key(signer.public_key)
    with db.session() as s:
        row = s.scalars(select(AgencySm2Key)).one()
        blob, aad = bytes(row.ciphertext)[1:], f"{USCC}:sm2:{row.key_id}".encode()
    assert key_id == bytes(row.public_key)
    label = write(tmp_path / "label", SM4_KEY_LABEL)
    derived = openssl("dgst", "-sm3", "-mac", "HMAC", "-macopt", f"hexkey:{master.hex()}", "-binary", label).stdout
    k_enc, k_mac = derived[:16], derived[16:]
    body, tag = blob[:-32], blob[-32:]
    mac_in = write(tmp_path / "mac-input", sm4_mac_input(body, aad))
    assert openssl("dgst", "-sm3", "-mac", "HMAC", "-macopt", f"hexkey:{k_mac.hex()}", "-binary",
                   mac_in).stdout == tag
    ciphertext = write(tmp_path / "ct", body[17:])
    plain = openssl("enc", "-d", "-sm4-ctr", "-K", k_enc.hex(), "-iv", body[1:17].hex(), "-in", ciphertext).stdout
    assert plain == signer.private_key_pem()  # PKCS#8 PEM, readable by `openssl pkey`
    assert openssl("pkey", "-pubout", stdin=plain).stdout == signer.public_key_pem
