"""Log redaction (api/logging.py): whatever text surrounds them, API keys, bearer tokens, document keys in URL
fragments and query strings, and ID-card numbers never survive `redact_text`; secret-named fields are blanked
whatever they hold. Also runs the module docstring examples of the hardening modules."""

from __future__ import annotations

import doctest
import secrets
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import api.interpreter
import api.limits
import api.logging
import api.private_files
from api.logging import REDACTED, redact, redact_text
from tests.unit.fuzz.strategies import json_values

FUZZ = settings(max_examples=300, deadline=None)
surrounding = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
api_keys = st.builds(lambda: "lzk_" + secrets.token_urlsafe(32))
document_keys = st.builds(lambda: secrets.token_urlsafe(32))
id_numbers = st.builds(lambda region, year, month, day, seq, check: f"{region}{year}{month:02d}{day:02d}{seq:03d}{check}",
                       st.integers(110000, 659999), st.integers(1900, 2025), st.integers(1, 12), st.integers(1, 28),
                       st.integers(0, 999), st.sampled_from("0123456789X"))


@FUZZ
@given(surrounding, surrounding, api_keys, document_keys, id_numbers)
def test_secrets_never_survive_redaction(before: str, after: str, api_key: str, doc_key: str, id_number: str) -> None:
    texts = [
        f"{before}Authorization: Bearer {api_key}{after}",
        f"{before}{api_key}{after}",
        f"{before} https://lz.example.gov.cn/v/1.2.156.3005.2.X#{doc_key} {after}",
        f"{before}?key={doc_key}&x=1{after}",
        f"{before}{{'x-document-key': '{doc_key}'}}{after}",
        f"{before}持证主体代码{id_number}{after}",
        f"{before} {id_number} {after}",
    ]
    for text in texts:
        out = redact_text(text)
        for secret in (api_key, api_key[4:], doc_key, id_number):
            assert secret not in out, (text, out)


@FUZZ
@given(st.dictionaries(st.sampled_from(["authorization", "X-Document-Key", "api_key", "master_key", "private_key",
                                        "token", "holder", "持证主体", "fields", "body", "headers", "password"]),
                       json_values, min_size=1))
def test_secret_named_fields_are_blanked_whatever_they_hold(fields: dict[str, Any]) -> None:
    out = redact(None, "info", {"event": "x", **fields})
    assert all(out[k] == REDACTED for k in fields) and out["event"] == "x"


def _every_substitution(text: str) -> str:
    """redact_text's definition: each rule's substitution in order, with no shortcut."""
    for pattern, replacement in api.logging._PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_PIECES = ["Bearer ", "BEARER\t", "bearer", "lzk_", "lzk", "key", "KEY", "Api-Key", "x_document_key", "token", "Secret",
           "=", ":", " ", "'", '"', "&", "#", "#abcdefghijklmnop", "AbCdEfGhIjKlMnOpQr", "==", "-", "_",
           "11010519491231002X", "1101051949123100", "19", "0", "-----BEGIN ", "EC ", "PRIVATE KEY-----",
           "-----END RSA PRIVATE KEY-----", "\n", "持证", "/v/1.2.156"]


@FUZZ
@given(st.lists(st.sampled_from(_PIECES) | st.text(max_size=4), max_size=12).map("".join))
def test_the_one_search_shortcut_gives_what_every_substitution_gives(text: str) -> None:
    assert redact_text(text) == _every_substitution(text)


@pytest.mark.parametrize("text", [
    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\nx",  # the first rule under its own flag (re.S)
    "auth: BEARER abc", "x lzk_abc", "API-KEY = abc", "/v/1#AbCdEfGhIjKlMnOp", "代码11010519491231002X号"])
def test_the_shortcut_lets_each_rule_act(text: str) -> None:
    assert _every_substitution(text) != text and redact_text(text) == _every_substitution(text)


@pytest.mark.parametrize("module", [api.logging, api.limits, api.private_files, api.interpreter])
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
