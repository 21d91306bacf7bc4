"""By-reference encryption (AES-256-GCM, key only in the URL fragment) and the verification link."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.errors import PayloadFormatError, ProofError, ValidationError
from registry.formats.envelope import (
    BLOB_VERSION,
    NONCE_LEN,
    aad_for,
    build_ref_url,
    decode_key,
    encode_key,
    open_,
    parse_ref_url,
    seal,
)
from tests.unit.qr.conftest import KEY, PUBLIC_BASE
from tests.unit.qr.factories import IDENTIFIER

AAD = aad_for(IDENTIFIER)
DOC = '{"证照名称":"营业执照","持证主体":"黑龙江省冰城数字科技有限公司"}'.encode()


def test_seal_then_open_round_trips_with_a_fresh_key_each_time() -> None:
    key1, blob1 = seal(DOC, aad=AAD)
    key2, blob2 = seal(DOC, aad=AAD)
    assert len(key1) == 32 and key1 != key2 and blob1 != blob2
    assert open_(blob1, key1, aad=AAD) == DOC


def test_blob_layout_is_version_nonce_ciphertext_tag() -> None:
    _, blob = seal(DOC, aad=AAD)
    assert blob[0] == BLOB_VERSION == 1
    assert len(blob) == 1 + NONCE_LEN + len(DOC) + 16


def test_resealing_with_the_printed_key_keeps_the_key() -> None:
    key, _ = seal(DOC, aad=AAD)
    same, blob = seal(b"v2", aad=AAD, key=key)
    assert same == key and open_(blob, key, aad=AAD) == b"v2"


def test_wrong_key_fails_to_decrypt() -> None:
    _, blob = seal(DOC, aad=AAD)
    with pytest.raises(ProofError, match="decryption failed") as err:
        open_(blob, bytes(32), aad=AAD)
    assert err.value.code == "decrypt_failed"


def test_blob_moved_to_another_identifier_fails_to_decrypt() -> None:
    key, blob = seal(DOC, aad=AAD)
    with pytest.raises(ProofError) as err:
        open_(blob, key, aad=aad_for(IDENTIFIER.replace(".K", ".L")))
    assert err.value.code == "decrypt_failed"


def test_any_changed_byte_fails_to_decrypt() -> None:
    key, blob = seal(DOC, aad=AAD)
    for i in range(1, len(blob)):
        tampered = blob[:i] + bytes((blob[i] ^ 0x01,)) + blob[i + 1:]
        with pytest.raises(ProofError):
            open_(tampered, key, aad=AAD)


def test_truncated_and_foreign_blobs_are_format_errors() -> None:
    key, blob = seal(DOC, aad=AAD)
    with pytest.raises(PayloadFormatError, match="expected at least 29 bytes, got 20") as err:
        open_(blob[:20], key, aad=AAD)
    assert err.value.code == "truncated_payload"
    # version 2 is SM4 (tests/unit/crypto/test_gm_sm4.py); 3 is nobody's
    with pytest.raises(PayloadFormatError, match=r"version 3, expected one of \[1, 2\]") as err:
        open_(b"\x03" + blob[1:], key, aad=AAD)
    assert err.value.code == "unsupported_version"


@pytest.mark.parametrize("key", [b"", bytes(16), bytes(33)])
def test_keys_must_be_32_bytes(key: bytes) -> None:
    with pytest.raises(ValidationError, match=f"must be 32 bytes, got {len(key)} bytes") as err:
        seal(DOC, aad=AAD, key=key)
    assert err.value.code == "invalid_key"


def test_key_text_is_43_base64url_characters() -> None:
    text = encode_key(b"\xfb\xff" * 16)
    alphabet = set("-_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    assert len(text) == 43 and set(text) <= alphabet
    assert text.startswith("-_")


@given(st.binary(min_size=32, max_size=32))
def test_key_text_round_trips(key: bytes) -> None:
    assert decode_key(encode_key(key)) == key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("AAEC+wQF", "must be base64url"),
        (encode_key(KEY) + "=", "must be base64url"),
        (encode_key(KEY)[:-1], "must be 32 bytes, got 31"),
        (encode_key(KEY)[:-1] + "9", "not in canonical base64url form"),  # stray bits after the last byte
        ("A", "not valid base64url"),
    ],
)
def test_bad_key_texts_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as err:
        decode_key(text)
    assert err.value.code == "invalid_key"


def test_webcrypto_can_decrypt_what_we_seal() -> None:
    """The browser path: Node's WebCrypto (the same API as the verifier page) opens our blob."""
    import base64
    import subprocess

    key, blob = seal(DOC, aad=AAD)
    script = """
    const [k, b, id] = process.argv.slice(1);
    const raw = Uint8Array.from(atob(k.replace(/-/g, "+").replace(/_/g, "/")), c => c.charCodeAt(0));
    const blob = Uint8Array.from(atob(b), c => c.charCodeAt(0));
    (async () => {
      const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["decrypt"]);
      const plain = await crypto.subtle.decrypt(
        {name: "AES-GCM", iv: blob.slice(1, 13), additionalData: new TextEncoder().encode(id)}, key, blob.slice(13));
      process.stdout.write(new TextDecoder().decode(plain));
    })();
    """
    # "--": a base64url key may begin with "-", which node would read as an option of its own (exit 9)
    out = subprocess.run(["node", "-e", script, "--", encode_key(key), base64.b64encode(blob).decode(), IDENTIFIER],
                         capture_output=True, timeout=60, check=True)
    assert out.stdout == DOC


# --- verification links ----------------------------------------------------------------------------------


def test_link_round_trips(ref_url: str) -> None:
    assert ref_url == f"{PUBLIC_BASE}/v/{IDENTIFIER}#{encode_key(KEY)}"
    assert parse_ref_url(ref_url) == (IDENTIFIER, KEY)
    assert parse_ref_url(ref_url, public_base=PUBLIC_BASE + "/") == (IDENTIFIER, KEY)


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:8000", "https://gov.cn/lianzheng", "https://gov.cn/lianzheng/", "HTTPS://LZ.HLJ.GOV.CN"]
)
def test_link_under_any_base_parses_against_that_base(base: str) -> None:
    url = build_ref_url(base, IDENTIFIER, KEY)
    assert parse_ref_url(url, public_base=base) == (IDENTIFIER, KEY)


def test_scheme_host_and_default_port_compare_case_insensitively() -> None:
    url = f"HTTPS://LZ.HLJ.GOV.CN:443/v/{IDENTIFIER}#{encode_key(KEY)}"
    assert parse_ref_url(url, public_base=PUBLIC_BASE) == (IDENTIFIER, KEY)


@pytest.mark.parametrize(
    "url",
    [
        f"https://evil.example/v/{IDENTIFIER}#{encode_key(KEY)}",
        f"http://lz.hlj.gov.cn/v/{IDENTIFIER}#{encode_key(KEY)}",
        f"https://lz.hlj.gov.cn:8443/v/{IDENTIFIER}#{encode_key(KEY)}",
        f"https://lz.hlj.gov.cn/other/v/{IDENTIFIER}#{encode_key(KEY)}",
    ],
)
def test_link_from_another_origin_is_not_ours_when_a_base_is_given(url: str) -> None:
    assert parse_ref_url(url)[0] == IDENTIFIER  # fine without a base
    with pytest.raises(PayloadFormatError, match="does not belong to") as err:
        parse_ref_url(url, public_base=PUBLIC_BASE)
    assert err.value.code == "not_lianzheng_qr"
    assert encode_key(KEY) not in err.value.message  # never echo the key


@pytest.mark.parametrize(
    "text",
    ["https://lz.hlj.gov.cn/", "https://lz.hlj.gov.cn/x/ID#k", "ftp://lz.hlj.gov.cn/v/ID#k", "https:///v/ID#k",
     "https://lz.hlj.gov.cn/v/#k", "https://lz.hlj.gov.cn:99999/v/ID#k", "just text"],
)
def test_other_urls_are_not_ours(text: str) -> None:
    with pytest.raises(PayloadFormatError, match="Not a Lianzheng certificate QR code") as err:
        parse_ref_url(text)
    assert err.value.code == "not_lianzheng_qr"


def test_link_without_a_key_says_the_key_is_missing() -> None:
    with pytest.raises(PayloadFormatError, match="no decryption key") as err:
        parse_ref_url(f"{PUBLIC_BASE}/v/{IDENTIFIER}")
    assert err.value.code == "missing_key" and err.value.details == {"identifier": IDENTIFIER}


def test_link_with_a_broken_key_says_the_key_is_invalid() -> None:
    with pytest.raises(PayloadFormatError, match="must be 32 bytes, got 24") as err:
        parse_ref_url(f"{PUBLIC_BASE}/v/{IDENTIFIER}#{encode_key(KEY)[:32]}")
    assert err.value.code == "invalid_key"


@pytest.mark.parametrize("base", ["lz.hlj.gov.cn", "ftp://lz.hlj.gov.cn", "https://lz.hlj.gov.cn/?a=1", "https://:80"])
def test_bad_public_base_is_refused(base: str) -> None:
    with pytest.raises(ValidationError, match="public base must be an http") as err:
        build_ref_url(base, IDENTIFIER, KEY)
    assert err.value.code == "invalid_public_base"


@pytest.mark.parametrize("identifier", ["", "a/b", "a b", "a#b", "x" * 257])
def test_identifiers_that_cannot_sit_in_a_path_are_refused(identifier: str) -> None:
    with pytest.raises(ValidationError) as err:
        build_ref_url(PUBLIC_BASE, identifier, KEY)
    assert err.value.code == "invalid_identifier"
