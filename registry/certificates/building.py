"""Building certificate documents from the values an issuing agency sends: the fields the service sets
(name, type, identifier, issuer, holder code type), the defaults (证照编号 = 流水号, 颁发日期 = today,
the validity window, 属地编码), then validation of every document of a request, reporting every invalid
one at once.

    >>> docs = build_documents(node.seeds, agency, cert_type, [values], first_serial=1)      # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Mapping, Sequence
from time import perf_counter
from typing import Any, cast

from registry.certificates._validate import validated_values
from registry.certificates.documents import Document
from registry.certificates.fields import HOLDER_KEY_FIELD
from registry.certificates.timing import StageTimer
from registry.errors import ValidationError
from registry.holders.keys import HolderPublicKey
from registry.identifiers import CertificateId
from registry.seeds import CertificateType, Seeds

MAX_REPORTED = 1000  # invalid documents listed in one error (the count says how many there were)


def complete_values(seeds: Seeds, agency: str, cert_type: CertificateType, values: Mapping[str, Any],
                    identifier: str, serial: str, today: dt.date) -> dict[str, Any]:
    """The values with the fields the service sets and the defaults filled in."""
    member = seeds.member(agency)
    fixed = {
        "证照名称": cert_type.name,
        "证照类型代码": cert_type.code,
        "证照标识": identifier,
        "颁发机构": member.name,
        "颁发机构代码": agency,
        "持证主体代码类型": cert_type.holder_code_type,
    }
    for name, value in fixed.items():
        given = values.get(name)
        if given is not None and given != value:
            raise ValidationError(f"field {name} is set by the issuing service (expected {value!r}, got {given!r})",
                                  code="invalid_field", details={"field": name})
    out = dict(values)
    out.update(fixed)
    out.setdefault("证照编号", serial)
    issued_on = out.setdefault("颁发日期", today.isoformat())
    out.setdefault("有效期起始", issued_on)
    if "有效期截止" not in out:
        years = cert_type.validity_years
        if years:
            start = dt.date.fromisoformat(str(out["有效期起始"])) if _is_date(out["有效期起始"]) else today
            try:
                end = start.replace(year=start.year + years) - dt.timedelta(days=1)
            except ValueError:  # 29 February
                end = start.replace(year=start.year + years, day=28)
            out["有效期截止"] = end.isoformat()
        else:
            out["有效期截止"] = None
    out.setdefault("属地编码", member.region)
    return out


def serial_at(k: int, first_serial: int, serials: Sequence[str] | None) -> str:
    """The 流水号 of the ``k``-th document of a chunk: given, or counted from the reserved ``first_serial``."""
    return serials[k] if serials is not None else f"{first_serial + k:012d}"


def build_each(seeds: Seeds, agency: str, cert_type: CertificateType, values_list: Sequence[Mapping[str, Any]],
               *, first_serial: int, today: dt.date, version: int = 1, serials: Sequence[str] | None = None,
               offset: int = 0, rng_for: Callable[[int], Any] | None = None,
               timer: StageTimer | None = None,
               encoded: list[bytes] | None = None) -> tuple[list[Document], list[ValidationError]]:
    """Validate and build the documents ``offset`` .. ``offset + len(values_list) - 1`` of a request (a whole
    request, or one chunk of it in a worker process: registry/certificates/parallel.py), returning the
    documents and every invalid one's error, which names its index in the whole request. ``rng_for(index)``
    gives a document's random generator (default: `secrets`). ``encoded`` gets each document's compact JSON
    (`Document.issued`), in the order of the documents."""
    validating = building = 0.0
    docs = []
    invalid: list[ValidationError] = []
    for k, values in enumerate(cast(Sequence[object], values_list)):  # JSON bodies may hold anything
        i = offset + k
        if not isinstance(values, Mapping):
            invalid.append(ValidationError(f"document {i} is not a JSON object", code="invalid_document",
                                           details={"index": i}))
            continue
        serial = serial_at(k, first_serial, serials)
        cid = CertificateId.build(cert_type.code, agency, serial, version)
        identifier = str(cid)
        bound = values.get(HOLDER_KEY_FIELD)  # set by bind_holder_keys from the request's holder_keys
        if bound is not None:
            values = {f: v for f, v in values.items() if f != HOLDER_KEY_FIELD}
        try:
            t0 = perf_counter()
            cid, norm = validated_values(
                cert_type, complete_values(seeds, agency, cert_type, values, identifier, serial, today), cid)
            t1 = perf_counter()
            doc, text = Document.issued(cert_type, cid, norm, bound=bound, rng=secrets if rng_for is None else rng_for(i),
                                        encode=encoded is not None)
            docs.append(doc)
            if encoded is not None and text is not None:
                encoded.append(text)
            validating += t1 - t0
            building += perf_counter() - t1
        except ValidationError as exc:
            exc.details.setdefault("index", i)
            exc.message = f"document {i}: {exc.message}"
            exc.args = (exc.message,)
            invalid.append(exc)
    if timer is not None:
        timer.add("validate", validating)
        timer.add("build", building)
    return docs, invalid


def raise_invalid(invalid: Sequence[ValidationError]) -> None:
    """Refuse a request with invalid documents: one ValidationError reports *all* of them at once: its code,
    message, `index` and `field` are the first's, and with several, `details.errors` lists the index, field,
    code and message of each (``invalid`` in document order)."""
    if not invalid:
        return
    first = invalid[0]
    if len(invalid) > 1:
        first.details["errors"] = [{"index": e.details["index"], "field": e.details.get("field"), "code": e.code,
                                    "message": e.message} for e in invalid[:MAX_REPORTED]]
        first.details["invalid_documents"] = len(invalid)
        first.message = f"{first.message} (and {len(invalid) - 1} more invalid documents: see details.errors)"
        first.args = (first.message,)
    raise first


def build_documents(seeds: Seeds, agency: str, cert_type: CertificateType, values_list: Sequence[Mapping[str, Any]],
                    *, first_serial: int, version: int = 1, serials: Sequence[str] | None = None,
                    timer: StageTimer | None = None) -> list[Document]:
    """Validate and build every document, in this process; `raise_invalid` when any is invalid."""
    docs, invalid = build_each(seeds, agency, cert_type, values_list, first_serial=first_serial,
                               today=dt.date.today(), version=version, serials=serials, timer=timer)
    raise_invalid(invalid)
    return docs


def plain_values(values: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise ValidationError(f"certificate values must be an object, got {type(values).__name__}",
                              code="invalid_document")
    if HOLDER_KEY_FIELD in values:
        raise ValidationError(f"{HOLDER_KEY_FIELD} is set from holder_key, not given as a field",
                              code="invalid_field", details={"field": HOLDER_KEY_FIELD})
    return dict(values)


def bind_holder_keys(values_list: Sequence[Mapping[str, Any]],
                     holder_keys: Sequence[str | None] | None) -> Sequence[Mapping[str, Any]]:
    """The values with each bound document's ``holderKeyDigest`` (the key id of its holder key) added."""
    if holder_keys is None:
        if any(isinstance(v, Mapping) and HOLDER_KEY_FIELD in v for v in values_list):
            plain_values(next(v for v in values_list if isinstance(v, Mapping) and HOLDER_KEY_FIELD in v))
        return values_list
    if len(holder_keys) != len(values_list):
        raise ValidationError(f"holder_keys has {len(holder_keys)} entries for {len(values_list)} documents",
                              code="invalid_holder_key")
    out: list[Mapping[str, Any]] = []
    for i, (values, key) in enumerate(zip(values_list, holder_keys, strict=True)):
        plain = plain_values(values)
        if key is not None:
            try:
                plain[HOLDER_KEY_FIELD] = HolderPublicKey.from_b64url(key).key_id
            except ValidationError as exc:
                raise ValidationError(f"document {i}: {exc.message}", code="invalid_holder_key",
                                      details={"index": i, "field": "holder_key"}) from None
        out.append(plain)
    return out


def _is_date(value: Any) -> bool:
    try:
        dt.date.fromisoformat(str(value))
    except ValueError:
        return False
    return True
