"""C2SP signed-note, tlog-checkpoint and tlog-cosignature (registry/logs/note.py) against the specs' own
examples, and round trips that must fail when one byte changes."""

from __future__ import annotations

import base64
import hashlib

import pytest

from registry.logs.note import (
    EM_DASH,
    CheckpointBody,
    Note,
    NoteError,
    NoteKey,
    NoteSignature,
    SignatureType,
    Verifier,
    cosignature_message,
    key_id,
    verify_note,
)

# c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature: the checkpoint example and its two signature lines
SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    f"{EM_DASH} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+"
    "zyWE+xeMcTOAYQ8=\n"
    f"{EM_DASH} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nN"
    "o0xUe+mbIUBkBIfZ+qnA==\n"
)
# c2sp.org/signed-note's opening example
SPEC_NOTE = (
    "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n"
    f"{EM_DASH} quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ih"
    "AQwaqP3ZekRwNtIc=\n"
)
# the reference implementation's published example key and note (the signed-note format comes from it)
REF_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
REF_NOTE = ("If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n"
            f"{EM_DASH} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6"
            "RyyBwJnAM=\n")


def test_the_spec_checkpoint_parses_into_its_three_lines_and_two_signatures() -> None:
    note = Note.parse(SPEC_CHECKPOINT)
    body = CheckpointBody.parse(note.text)
    assert body.origin == "example.com/behind-the-sofa" and body.size == 20852163 and body.extensions == ()
    assert base64.b64encode(body.root).decode() == "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    assert body.text() == note.text
    assert [s.name for s in note.signatures] == ["example.com/behind-the-sofa", "witness.example.com/w1"]
    assert note.text_with_signatures() == SPEC_CHECKPOINT


def test_the_spec_cosignature_carries_the_time_of_the_spec_signed_message() -> None:
    cosig = Note.parse(SPEC_CHECKPOINT).signatures[1]
    assert len(cosig.signature) == 8 + 64  # timestamped_signature: u64 timestamp || Ed25519 signature
    assert Verifier.cosignature_time(cosig) == 1679315147
    body = Note.parse(SPEC_CHECKPOINT).text
    assert cosignature_message(body, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")


def test_the_spec_note_keeps_its_blank_line_in_the_text() -> None:
    note = Note.parse(SPEC_NOTE)
    assert note.text.endswith("terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n")
    assert note.signatures[0].name == "quasimodo.example/salvatore" and len(note.signatures[0].key_id) == 4


def test_the_reference_vkey_and_note_verify_and_one_changed_byte_does_not() -> None:
    verifier = Verifier.from_vkey(REF_VKEY)
    assert verifier.vkey() == REF_VKEY
    assert verify_note(Note.parse(REF_NOTE), [verifier]) == [verifier]
    with pytest.raises(NoteError, match="does not verify"):
        verify_note(Note.parse(REF_NOTE.replace("cryptography", "cryptographx")), [verifier])


def test_key_ids_are_the_spec_hash_and_depend_on_name_and_type() -> None:
    key = NoteKey.generate("lianzheng.hl.gov.cn/31337/certificates")
    pub = key.verifier.public_key
    expected = hashlib.sha256(b"lianzheng.hl.gov.cn/31337/certificates\n\x01" + pub).digest()[:4]
    assert key.verifier.key_id == expected == key_id(key.name, SignatureType.ED25519, pub)
    assert key_id(key.name, SignatureType.COSIGNATURE_V1, pub) != expected
    assert Verifier.from_vkey(key.verifier.vkey()) == key.verifier


def test_a_cosignature_verifies_over_the_body_and_not_over_another() -> None:
    log = NoteKey.generate("lianzheng.hl.gov.cn/31337/evidence")
    witness = NoteKey.generate("witness.lianzheng.hl.gov.cn/11230000MB1A00036G", SignatureType.COSIGNATURE_V1)
    body = CheckpointBody("lianzheng.hl.gov.cn/31337/evidence", 5, hashlib.sha256(b"r").digest()).text()
    note = Note(body, (log.sign(body), witness.sign(body, timestamp=1700000000)))
    parsed = Note.parse(note.text_with_signatures())
    assert verify_note(parsed, [log.verifier, witness.verifier]) == [log.verifier, witness.verifier]
    assert Verifier.cosignature_time(parsed.signatures[1]) == 1700000000
    other = CheckpointBody("lianzheng.hl.gov.cn/31337/evidence", 6, hashlib.sha256(b"r").digest()).text()
    forged = Note(other, (parsed.signatures[1],))
    with pytest.raises(NoteError):
        verify_note(forged, [witness.verifier])
    # an unknown key's signature is ignored, and a note no known key signed is rejected
    stranger = NoteKey.generate("stranger.example/x")
    assert verify_note(note.with_signatures((stranger.sign(body),)), [log.verifier]) == [log.verifier]
    with pytest.raises(NoteError, match="no signature from a known key"):
        verify_note(note, [stranger.verifier])


@pytest.mark.parametrize("bad", [
    "example.com/log\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # no blank line, no signature
    "example.com/log\n1\nAAAA\n\n\u2014 k AAAAAA==\n",  # signature shorter than its key ID
    "example.com/log\n1\r\nAAAA\n\n\u2014 k AAAAAAAAAA==\n",  # a control character
    "example.com/log\n1\n\n- k AAAAAAAAAA==\n",  # a hyphen is not an em dash
])
def test_malformed_notes_are_refused(bad: str) -> None:
    with pytest.raises(NoteError):
        Note.parse(bad)


@pytest.mark.parametrize("body", [
    "o\n01\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # leading zero
    "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",  # not base64
    "o\n1\n\n",  # empty line
    "o\n1\nAAAA\n",  # root not 32 bytes
])
def test_malformed_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(NoteError):
        CheckpointBody.parse(body)


def test_signature_lines_round_trip() -> None:
    sig = NoteSignature("a.example/b", b"\x01\x02\x03\x04", b"\x05" * 64)
    assert NoteSignature.parse_line(sig.line()[:-1]) == sig
