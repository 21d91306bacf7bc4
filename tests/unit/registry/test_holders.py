"""Holder keys, signed objects, grants, revocation statements, key wrapping, the grant rules and the wallet."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.grants import GrantState, GrantStatus
from registry.errors import AuthenticationError, PayloadFormatError, ProofError, ValidationError
from registry.holders.grant_checks import CertificateFacts, evaluate
from registry.holders.grants import Grant, Grantee, GrantRevocation, agency_grantee_digest, person_grantee_digest
from registry.holders.keys import HolderKey, HolderPublicKey, b64url_encode, signed_bytes
from registry.holders.presentation import Challenge, check_signature, sign_presentation
from registry.holders.wallet import Wallet, load_public_key, validate_holder_code
from registry.holders.wrapping import unwrap_key, wrap_key

ISSUER, GRANTEE = "11230000MB1A00028M", "11230000MB1A00036G"
HOLDER = HolderKey.generate()
T0 = 1_800_000_000


def _grant(**kw: object) -> Grant:
    args: dict[str, object] = {"certificate": "ab" * 32, "issuer": ISSUER, "holder_key": HOLDER.public,
                               "grantee": Grantee.agency(GRANTEE), "purpose": "办理开户", "not_before": T0,
                               "expires": T0 + 3600, "fields": ["持证主体", "住所"]}
    args.update(kw)
    return Grant.build(**args).sign(HOLDER)  # type: ignore[arg-type]


def test_signatures_are_raw_64_bytes_over_the_canonical_json_without_the_signature() -> None:
    signed = HOLDER.sign_object({"b": 2, "a": "链"})
    assert signed_bytes(signed) == '{"a":"链","b":2}'.encode()
    assert HOLDER.public.verify_object(signed) and len(HOLDER.sign(b"x")) == 64
    assert not HolderKey.generate().public.verify_object(signed)
    assert not HOLDER.public.verify_object({**signed, "signature": b64url_encode(bytes(64))})
    assert not HOLDER.public.verify_object({**signed, "signature": "!!"})


def test_only_p256_spki_in_canonical_der_is_a_holder_key() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for bad in (other, b"\x30\x00", HOLDER.public.spki_der + b"\x00"):
        with pytest.raises(ValidationError, match="holder key"):
            HolderPublicKey.from_spki(bad)
    assert len(HOLDER.public.key_id) == 64


def test_a_grant_round_trips_through_json_and_qr_and_its_digest_covers_the_signature() -> None:
    g = _grant()
    assert Grant.parse(g.to_json()) == g and g.signature_valid()
    parsed, salt = Grant.from_qr(g.qr())
    assert parsed.digest == g.digest and salt is None
    person, psalt = Grantee.person("11010519491231002X")
    pg = _grant(grantee=person)
    assert Grant.from_qr(pg.qr(psalt))[1] == psalt
    assert person.digest == person_grantee_digest(psalt, "11010519491231002X")
    assert Grantee.agency(GRANTEE).digest == agency_grantee_digest(GRANTEE)


@pytest.mark.parametrize("change", [
    {"type": "Other"}, {"v": 2}, {"id": "xyz"}, {"certificate": "AB" * 32}, {"issuer": "123"},
    {"holder_key": "AAAA"}, {"grantee": {"kind": "robot", "digest": "00" * 32}}, {"purpose": ""},
    {"purpose": "x" * 201}, {"purpose": "a\u202eb"}, {"not_before": "2026-01-01"}, {"fields": []},
    {"fields": ["a", "a"]}, {"wrapped_key": 7}, {"signature": "***"}, {"extra": 1},
])
def test_malformed_grants_are_refused_with_invalid_grant(change: dict[str, object]) -> None:
    with pytest.raises(PayloadFormatError) as exc:
        Grant.parse({**_grant().to_json(), **change})
    assert exc.value.code == "invalid_grant"


def test_the_grant_rules_give_each_reason_in_order() -> None:
    g = _grant()
    facts = CertificateFacts("id", "issued", HOLDER.public.key_id, ISSUER)
    chain = GrantState(bytes.fromhex(g.certificate), g.grantee.digest, g.not_before, g.expires, GrantStatus.ACTIVE)
    me = agency_grantee_digest(GRANTEE)

    def reason(grant: Grant = g, **kw: object) -> str | None:
        args: dict[str, object] = {"certificate": facts, "chain": chain, "now": T0 + 10, "party": me,
                                   "shown_fields": ["证照标识", "持证主体", "holderKeyDigest"]}
        args.update(kw)
        return evaluate(grant, **args).reason  # type: ignore[arg-type]

    assert reason() is None
    forged = Grant.parse({**g.to_json(), "purpose": "别的事由"})
    assert reason(grant=forged) == "bad_signature"
    assert reason(certificate=None) == "unknown_certificate"
    assert reason(certificate=CertificateFacts("id", "issued", "00" * 32, ISSUER)) == "holder_mismatch"
    assert reason(certificate=CertificateFacts("id", "revoked", HOLDER.public.key_id, ISSUER)) == \
        "certificate_not_valid"
    assert reason(chain=None) == "not_anchored"
    assert reason(chain=GrantState(chain.certificate_doc, bytes(32), g.not_before, g.expires,
                                   GrantStatus.ACTIVE)) == "not_anchored"
    assert reason(chain=GrantState(chain.certificate_doc, g.grantee.digest, g.not_before, g.expires,
                                   GrantStatus.REVOKED)) == "revoked"
    assert reason(now=T0 - 1) == "not_yet_valid"
    assert reason(now=T0 + 3600) == "expired"
    assert reason(party=agency_grantee_digest(ISSUER)) == "wrong_party"
    assert reason(shown_fields=["持证主体", "法定代表人"]) == "fields_out_of_scope"


def test_a_revocation_statement_is_signed_by_the_holder_key() -> None:
    r = GrantRevocation.build(_grant().digest, T0).sign(HOLDER)
    assert GrantRevocation.parse(r.to_json()).signed_by(HOLDER.public)
    assert not r.signed_by(HolderKey.generate().public)
    with pytest.raises(PayloadFormatError):
        GrantRevocation.parse({**r.to_json(), "grant": "zz"})


@settings(max_examples=25, deadline=None)
@given(key=st.binary(min_size=16, max_size=64), grant_id=st.text("0123456789abcdef", min_size=32, max_size=32))
def test_a_wrapped_key_opens_only_with_its_recipient_and_grant(key: bytes, grant_id: str) -> None:
    recipient = HolderKey.generate()
    wrapped = wrap_key(key, recipient.public, grant_id=grant_id)
    assert unwrap_key(wrapped, recipient, grant_id=grant_id) == key
    with pytest.raises(ProofError):
        unwrap_key(wrapped, HolderKey.generate(), grant_id=grant_id)
    with pytest.raises(ProofError):
        unwrap_key(wrapped, recipient, grant_id="f" * 32 if grant_id != "f" * 32 else "e" * 32)


def test_a_presentation_signature_names_the_certificate_and_the_bound_key() -> None:
    c = Challenge(b64url_encode(bytes(16)), "verifier", T0)
    p = sign_presentation(HOLDER, "ab" * 32, c)
    assert check_signature(p, certificate="ab" * 32, holder_key_digest=HOLDER.public.key_id).verdict == \
        "presented_by_holder"
    assert check_signature(p, certificate="cd" * 32, holder_key_digest=HOLDER.public.key_id).reason == \
        "wrong_certificate"
    assert check_signature(p, certificate="ab" * 32, holder_key_digest=None).reason == "not_bound"
    assert check_signature(None, certificate="ab" * 32, holder_key_digest=None).reason == "no_signature"


def test_the_wallet_keeps_its_key_encrypted_in_0600_files(tmp_path: Path) -> None:
    w = Wallet.create(tmp_path / "w", "secret", holder_code="11010519491231002X", scrypt_n=2**10)
    assert stat.S_IMODE((tmp_path / "w").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "w" / "key.json").stat().st_mode) == 0o600
    assert w.unlock("secret").public.key_id == w.key_id and w.holder_code == "11010519491231002X"
    with pytest.raises(AuthenticationError, match="passphrase"):
        w.unlock("wrong")
    with pytest.raises(ValidationError, match="already"):
        Wallet.create(tmp_path / "w", "secret", scrypt_n=2**10)
    path = w.add_grant(_grant().to_json(), "ab" * 32, qr="lianzheng:grant:x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert w.update_grant("ab" * 32, status="revoked") and w.grants()[0]["status"] == "revoked"
    assert load_public_key(str(tmp_path / "w")).key_id == w.key_id
    assert load_public_key(w.public.spki_b64url).key_id == w.key_id
    with pytest.raises(ValidationError):
        validate_holder_code("123")
