"""The offline verifier's third-pass shortcuts give exactly what their plain definitions give, on valid and
altered input: leaf inputs built in one string (``0x00 || leaf_entry``), salts derived in one loop
(``derive_salt`` each), the document tree without leaf checks (``root_from_leaf_hashes``), the one-encoding
check without sorting (``cbor2.dumps(canonical=True)``), GB 18030 texts checked without decoding twice
(``_pack_value``), the document digest made once (``merkle_root`` of the entries), the verification result set
by one dict update (the dataclass's constructor), and the verifier's checks memoised by their arguments (a
fresh verifier, whose memo is empty)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.devtools.offline_workload import PROFILES, offline_workload
from registry.certificates.fields import derive_salt, derive_salts, leaf_entry, leaf_input, path_key
from registry.certificates.offline import OfflineVerifier, _result
from registry.certificates.verification import Check, VerificationResult
from registry.consortium.trust_list import TrustList
from registry.crypto import merkle
from registry.crypto.hashing import hash_constructor
from registry.errors import PayloadFormatError, RegistryError
from registry.formats import gb_text, lz2
from registry.formats.qr import OfflinePayload, decode_payload
from tests.unit.qr.factories import REALISTIC_FIELDS, make_payload

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PATHS = st.one_of(st.sampled_from(sorted(REALISTIC_FIELDS)), st.text(max_size=12),
                  st.text(alphabet='"\\%{}:,住所\x00\x1f\u2028\ud800', max_size=6))
VALUES = st.one_of(st.text(max_size=20), st.sampled_from(list(REALISTIC_FIELDS.values())),
                   st.text(alphabet='"\\\x00\x7f\ud800\udfff黑é', max_size=6), st.integers(-(2**60), 2**60),
                   st.booleans(), st.none(), st.floats(allow_nan=False, allow_infinity=False))


def _outcome(f: Any, *args: Any) -> Any:
    try:
        return ("ok", f(*args))
    except (ValueError, UnicodeError, TypeError) as exc:
        return ("error", type(exc).__name__)


# --- leaf inputs ---------------------------------------------------------------------------------------------


@FAST
@given(PATHS, st.binary(min_size=16, max_size=16), VALUES)
def test_a_leaf_input_is_the_leaf_prefix_and_the_canonical_entry(path: str, salt: bytes, value: Any) -> None:
    plain = _outcome(lambda: b"\x00" + leaf_entry(path, salt, value))
    assert _outcome(leaf_input, path, salt, value) == plain
    assert _outcome(leaf_input, path, salt, value) == plain  # its head now known


# --- salts ---------------------------------------------------------------------------------------------------


@FAST
@given(st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=100)), st.lists(PATHS, max_size=6))
def test_salts_derived_in_one_loop_are_the_hmacs_of_each_path(seed: bytes, paths: list[str]) -> None:
    try:
        expected = [derive_salt(seed, p) for p in paths]
    except UnicodeError:
        with pytest.raises(UnicodeError):
            derive_salts(seed, paths)
        return
    assert derive_salts(seed, paths) == expected


# --- the document tree ---------------------------------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(st.integers(0, 70), st.sampled_from(["sha256", "sm3"]), st.randoms(use_true_random=False))
def test_the_unchecked_tree_root_is_the_rfc6962_root(n: int, algorithm: str, rnd: random.Random) -> None:
    leaves = [rnd.randbytes(32) for _ in range(n)]
    expected = merkle.root_from_leaf_hashes(leaves, algorithm=algorithm)
    assert merkle.root_of_hashed_leaves(list(leaves), hash_constructor(algorithm)) == expected


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.sets(st.sampled_from(sorted(REALISTIC_FIELDS)), max_size=5))
def test_the_document_digest_is_the_merkle_root_of_the_entries_in_path_order(seed: int, hide: set[str]) -> None:
    p = make_payload(seed=seed, hide=tuple(sorted(hide)), sm3_hidden={}, sm3_proof=None)
    for algorithm in ("sha256", "sm3"):
        if algorithm == "sm3":
            p = dataclasses.replace(p, sm3_hidden={k: bytes([len(k)]) * 32 for k in p.hidden},
                                    sm3_proof=[bytes(32)] * len(p.proof))
        hidden = p.hidden if algorithm == "sha256" else p.sm3_hidden
        leaves = [hidden[k] if k in hidden else merkle.leaf_hash(leaf_entry(k, *p.disclosed[k]), algorithm=algorithm)
                  for k in sorted({*p.disclosed, *p.hidden}, key=path_key)]
        expected = merkle.root_from_leaf_hashes(leaves, algorithm=algorithm)
        assert p.document_digest(algorithm) == expected
        assert p.document_digest(algorithm) == expected  # the second answer (SHA-256: remembered) too


# --- the one-encoding rule -----------------------------------------------------------------------------------

BODIES = [cbor2.loads(lz2.body_bytes(p)) for p in (make_payload(seed=1), make_payload(seed=2, hide=("住所",)),
                                                    make_payload(seed=3, sm3_hidden={}, sm3_proof=[bytes(32)] * 10))]


@st.composite
def reordered_bodies(draw: Any) -> tuple[list[Any], bytes]:
    raw = json_copy(draw(st.sampled_from(BODIES)))
    maps = [4, 5] + ([13] if len(raw) > 13 else [])
    for at in draw(st.lists(st.sampled_from(maps), max_size=3)):
        target = raw[13][0] if at == 13 else raw[at]
        items = list(target.items())
        kind = draw(st.sampled_from(["shuffle", "negative", "name", "big", "bool"]))  # no floats: see _is_canonical
        if kind == "shuffle":
            draw(st.randoms(use_true_random=False)).shuffle(items)
        elif kind == "negative" and items:
            items.append((-draw(st.integers(1, 300)), items[0][1]))
        elif kind == "name" and items:
            items.append((draw(st.text(min_size=1, max_size=4)), items[0][1]))
        elif kind == "big" and items:
            items.append((draw(st.integers(256, 2**40)), items[0][1]))
        elif kind == "bool" and items:
            items.append((draw(st.booleans()), items[0][1]))
        replaced = dict(items)
        if at == 13:
            raw[13][0] = replaced
        else:
            raw[at] = replaced
    encoded_keys = draw(st.booleans())  # the body as the wire sends it: sorted, or in this (maybe wrong) order
    return raw, cbor2.dumps(raw, canonical=encoded_keys)


def json_copy(raw: list[Any]) -> list[Any]:
    return cbor2.loads(cbor2.dumps(raw))


@FAST
@given(reordered_bodies())
def test_the_order_check_without_sorting_equals_the_canonical_encoder(case: tuple[list[Any], bytes]) -> None:
    raw, body = case
    wire = cbor2.loads(body)  # what the decoder holds: the wire's key order
    assert lz2._is_canonical(wire, body) == (cbor2.dumps(wire, canonical=True) == body)


def test_a_body_with_its_codes_out_of_order_is_refused() -> None:
    raw = json_copy(BODIES[0])
    raw[4] = dict(reversed(list(raw[4].items())))
    body = cbor2.dumps(raw)
    text = lz2.PREFIX + lz2.b45encode(__import__("zlib").compress(cbor2.dumps([body, b""]), 9))
    with pytest.raises(PayloadFormatError, match="deterministic LZ2 encoding"):
        decode_payload(text)


@FAST
@given(st.one_of(st.binary(max_size=24), st.text(alphabet="黑龙江省（）：·—A1 é€龍𠀀", max_size=10).map(
    lambda t: t.encode("gb18030"))))
def test_gb18030_bytes_pack_back_as_the_encoder_packs(packed: bytes) -> None:
    try:
        value = gb_text.unpack_value(packed, "x")
    except PayloadFormatError:
        return
    assert gb_text.packs_to(value, packed) == (gb_text.pack_value(value) == packed)
    for _ in range(2):  # decoded, then remembered
        assert gb_text.opened(packed, "x") == (value, gb_text.pack_value(value) == packed)


# --- the result and the memo ---------------------------------------------------------------------------------


def test_a_result_set_by_one_update_equals_the_constructed_one() -> None:
    values: dict[str, Any] = dict(verdict="valid", verdict_zh="有效", verdict_en="valid", identifier="x",
                                  checks=[Check("status", "VALID", "a", "b", {"k": 1})], issuer={"a": 1}, anchor=None,
                                  disclosed_fields=["a"], hidden_fields=[], fields={"a": "b"}, as_of={"block": 1})
    fast, plain = _result(**values), VerificationResult(**values)
    assert fast == plain and fast.to_json() == plain.to_json() and type(fast) is VerificationResult
    with pytest.raises(TypeError):
        _result(**values, nonsense=1)


WORK = {w.profile: w for w in (offline_workload(6, profile=p, batch_size=3) for p in PROFILES)}
WARM = {p: OfflineVerifier(TrustList.from_json(w.trust_list)) for p, w in WORK.items()}
TODAYS = [dt.date(2000, 1, 1), dt.date.today(), dt.date(2999, 1, 1)]


@st.composite
def altered_payloads(draw: Any) -> tuple[str, OfflinePayload, dt.date]:
    profile = draw(st.sampled_from(sorted(WORK)))
    p = decode_payload(draw(st.sampled_from(WORK[profile].texts)))
    changes: dict[str, Any] = {}
    for kind in draw(st.lists(st.sampled_from(["block", "time", "chain", "ledger", "field", "name", "until", "id",
                                               "type", "hide", "signed_at"]), max_size=3, unique=True)):
        if kind == "block":
            changes["block_number"] = p.block_number + draw(st.sampled_from([-1, 1, 10_000]))
        elif kind == "time":
            changes["block_timestamp"] = p.block_timestamp + draw(st.integers(1, 10**6))
        elif kind == "chain":
            changes["chain_id"] = p.chain_id + 1
        elif kind == "ledger":
            changes["ledger"] = bytes(20)
        elif kind in ("field", "name", "until"):
            name = {"field": draw(st.sampled_from(sorted(p.disclosed))), "name": "颁发机构", "until": "有效期截止"}[kind]
            value = draw(st.sampled_from(["长期", "2000-01-01", "2999-12-31", "某某局", 1, True, None]))
            changes["disclosed"] = {**changes.get("disclosed", p.disclosed), name: (p.disclosed[name][0], value)}
        elif kind == "id":
            changes["identifier"] = p.identifier[:-1] + ("A" if p.identifier[-1] != "A" else "B")
        elif kind == "type":
            changes["type_code"] = "11100000MB0143028R002"
        elif kind == "hide":
            name = draw(st.sampled_from(sorted(p.disclosed)))
            disclosed = dict(changes.get("disclosed", p.disclosed))
            salt, value = disclosed.pop(name)
            changes.update(disclosed=disclosed, hidden={name: merkle.leaf_hash(leaf_entry(name, salt, value))},
                           salt_seed=b"")
        elif kind == "signed_at" and p.statement is not None:
            changes["statement"] = dataclasses.replace(p.statement, signed_at=p.statement.signed_at + 1)
    try:
        altered = dataclasses.replace(p, **changes)
    except RegistryError:
        altered = p
    return profile, altered, draw(st.sampled_from(TODAYS))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(altered_payloads())
def test_memoised_checks_equal_the_checks_of_a_fresh_verifier(case: tuple[str, OfflinePayload, dt.date]) -> None:
    profile, payload, today = case
    warm = WARM[profile]
    warm.today = lambda: today
    fresh = OfflineVerifier(warm.trust, today=lambda: today)
    got = warm.verify_payload(payload).to_json()  # the warm memo holds every earlier example's checks
    expected = fresh.verify_payload(payload).to_json()
    assert json.dumps(got, sort_keys=True, ensure_ascii=False) == json.dumps(expected, sort_keys=True,
                                                                             ensure_ascii=False)


def test_the_memo_is_bounded() -> None:
    from registry.certificates import offline

    verifier = OfflineVerifier(WARM["intl"].trust)
    p = decode_payload(WORK["intl"].texts[0])
    for block in range(offline._MEMO_SIZE + 10):
        verifier.verify_payload(dataclasses.replace(p, block_number=block))
    assert len(verifier._memos) <= offline._MEMO_SIZE
