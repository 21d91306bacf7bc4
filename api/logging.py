"""Logging, configured once per server process: JSON lines on stderr through structlog, the standard library's
loggers (uvicorn, SQLAlchemy, web3 ...) routed through the same processors, and every event redacted before it
is rendered.

    >>> configure_logging("info")                                            # doctest: +SKIP
    >>> structlog.get_logger("api").info("request", path="/healthz")         # doctest: +SKIP
    {"path": "/healthz", "event": "request", "level": "info", "logger": "api", "timestamp": "..."}
    >>> redact_text("retry with Bearer lzk_abc123 for /v/1.2.156#q5ZkW3mYhVb8sT0uQ1x2Aw")
    'retry with Bearer [redacted] for /v/1.2.156#[redacted]'

What is never logged: request bodies, headers, holder values, keys. Tracebacks are rendered as plain text
(no locals, no rich rendering: rendering locals once stalled the event loop for 6 s and printed the bearer
token of the request, issue 10) and pass through the same redaction as every other string.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import traceback
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"
TRACEBACK_FRAMES = 30
MAX_STRING = 16_000  # one log value never grows past this (a hostile path or message cannot flood the log)

# Keys whose values are secrets or holder data whatever they hold (compared lower-case, '-' read as '_').
_SECRET_KEY_PARTS = ("authorization", "token", "secret", "password", "passphrase", "cookie", "key", "holder",
                     "持证", "fields", "document", "body", "headers", "fragment")
_NOT_SECRET_KEYS = frozenset({"event", "logger", "level", "timestamp", "request_id", "method", "path", "status",
                              "duration_ms", "agency", "exception", "error", "pid", "query_params"})

_RULES: tuple[tuple[str, re.RegexFlag, str], ...] = (  # pattern, flags, replacement
    # PEM private keys, whole block
    (r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.S, REDACTED),
    # bearer credentials and agency API keys (api/keys: 'lzk_' + 43 url-safe characters)
    (r"\b(bearer)\s+[^\s\"',;]+", re.I, r"\1 " + REDACTED),
    (r"lzk_[A-Za-z0-9_\-]+", re.NOFLAG, "lzk_" + REDACTED),
    # name=value / 'name': 'value' for secret-looking names: query strings, header dumps, reprs
    (r"((?:x[-_]document[-_]key|api[-_]?key|master[-_]?key|private[-_]?key|secret|password|token"
     r"|authorization|key)[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;}]+)", re.I, r"\1" + REDACTED),
    # URL fragments carry the document key of by-reference QR codes (<base>/v/<id>#<key>)
    (r"#[A-Za-z0-9_\-]{16,}={0,2}", re.NOFLAG, "#" + REDACTED),
    # 居民身份证号码 (GB 11643): 6-digit region, birth date, sequence, check character
    # (no word boundaries: digits around it, as in "代码230102..." or a longer run, must not shield it)
    (r"[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]", re.NOFLAG,
     REDACTED),
)
_PATTERNS = tuple((re.compile(pattern, flags), replacement) for pattern, flags, replacement in _RULES)
# Matches where any rule matches, each under its own flags: a text none of them matches (most values of most
# lines: a method, a path, a status, a request id) is left as it is after one search instead of six
# substitutions. The substitutions, in order, stay the definition (tests/unit/fuzz/test_log_redaction.py).
_ANY_RULE = re.compile("|".join(
    f"(?{''.join(letter for flag, letter in ((re.I, 'i'), (re.S, 's')) if flags & flag)}:{pattern})"
    for pattern, flags, _ in _RULES))


def redact_text(text: str) -> str:
    if _ANY_RULE.search(text) is not None:
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
    return text if len(text) <= MAX_STRING else text[:MAX_STRING] + "...[truncated]"


def plain_traceback(exc: BaseException) -> str:
    """The frames (file, line, function, source line) of `exc` and of the exceptions it was raised from, with
    the exception types but not their messages: a message may quote the request (a holder name, a key, SQL
    parameters) and no pattern can recognise every holder value. No locals either. The request id ties the
    entry to the request, which is how a bug is reproduced."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 5:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts = []
    for e in reversed(chain):
        frames = traceback.extract_tb(e.__traceback__)[-TRACEBACK_FRAMES:]
        parts.append("Traceback (most recent call last):\n" + "".join(traceback.format_list(frames))
                     + f"{type(e).__module__}.{type(e).__qualname__}: (message withheld: it may quote the request)\n")
    return redact_text("\nwhich caused:\n".join(parts))


@functools.lru_cache(maxsize=1024)  # the names are the code's, a few dozen; a line has seven or more
def _is_secret_key(key: str) -> bool:
    name = key.lower().replace("-", "_")
    return name not in _NOT_SECRET_KEYS and any(part in name for part in _SECRET_KEY_PARTS)


def _redact_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if depth > 4:
        return "<nested>"
    if isinstance(value, Mapping):
        return {str(k): REDACTED if _is_secret_key(str(k)) else _redact_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v, depth + 1) for v in list(value)[:100]]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(repr(value))


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: secret keys blanked, every string scrubbed of tokens, keys and ID numbers."""
    return {k: REDACTED if _is_secret_key(k) else _redact_value(v) for k, v in event_dict.items()}


# Libraries whose INFO lines are noise in a server log (migrations run, HTTP calls to the chain made).
_QUIET = ("alembic", "sqlalchemy", "web3", "urllib3", "httpx", "httpcore", "asyncio")

_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,  # request_id of the request being served
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(level: str | int = "info", *, stream: TextIO | None = None) -> None:
    """JSON lines on `stream` (stderr) for structlog and stdlib loggers alike; replaces earlier handlers."""
    numeric = level if isinstance(level, int) else logging.getLevelName(level.upper())
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # plain traceback text: no locals, no rich rendering
            redact,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # uvicorn installs handlers of its own unless run with log_config=None; clear them either way so its
    # records propagate to the redacting handler above.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
    logging.captureWarnings(True)  # Python warnings become log records too: one stream, one format
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    structlog.configure(
        processors=[*_SHARED, structlog.processors.format_exc_info,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )
