"""电子证照用证率 (the plan indicator, target 90%): certificates used at least once / certificates issued, per
issuing agency, certificate type or month of issue, over the certificates this node issued (a usage recorded
on any node reaches the issuing node through the usage inbox, registry/usage/inbox.py).

* issued: a certificate anchored on chain (``issued_at`` set), whatever its status now;
* used: at least one usage of its document digest is on chain (status ``recorded``); pending usages and the
  usages of certificates issued elsewhere do not count here.
* month: the month of issue in the agencies' time zone (UTC+8), ``YYYY-MM``.

    >>> rate(3, 4), rate(0, 0)
    (0.75, None)
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import select

from registry.clock import CHINA
from registry.errors import ValidationError
from registry.node import Node
from registry.store.db import Certificate, Member
from registry.store.usage_models import UsageRecord

__all__ = ["GROUPINGS", "TARGET", "rate", "usage_rate"]

GROUPINGS = ("agency", "type", "month")
TARGET = 0.9  # 电子证照用证率 target of the provincial plan


def rate(used: int, issued: int) -> float | None:
    return round(used / issued, 4) if issued else None


def _month(issued_at: dt.datetime) -> str:
    return issued_at.replace(tzinfo=dt.UTC).astimezone(CHINA).strftime("%Y-%m")


def usage_rate(node: Node, by: str = "agency") -> dict[str, Any]:
    """{"by", "target", "total": {issued, used, rate}, "groups": [{key, name, issued, used, rate}]} sorted by key."""
    if by not in GROUPINGS:
        raise ValidationError(f"by must be one of {', '.join(GROUPINGS)}, got {str(by)[:40]!r}", code="invalid_grouping",
                              details={"allowed": list(GROUPINGS)})
    with node.db.session() as s:
        used_docs = set(s.scalars(select(UsageRecord.certificate_doc).where(UsageRecord.status == "recorded")
                                  .distinct()))
        names = {m.uscc: m.name for m in s.scalars(select(Member))}
        issued: dict[str, int] = defaultdict(int)
        used: dict[str, int] = defaultdict(int)
        for type_code, issuer, issued_at, digest in s.execute(
                select(Certificate.type_code, Certificate.issuer_uscc, Certificate.issued_at, Certificate.digest_sha256)
                .where(Certificate.issued_at.is_not(None))):
            assert issued_at is not None  # the query's condition
            key = issuer if by == "agency" else type_code if by == "type" else _month(issued_at)
            issued[key] += 1
            if "0x" + digest in used_docs:
                used[key] += 1
    type_names = {t.code: t.name for t in node.seeds.certificate_types}
    groups = []
    for key in sorted(issued):
        name = names.get(key) if by == "agency" else type_names.get(key) if by == "type" else key
        groups.append({"key": key, "name": name, "issued": issued[key], "used": used[key],
                       "rate": rate(used[key], issued[key])})
    total_issued, total_used = sum(issued.values()), sum(used.values())
    return {"by": by, "target": TARGET,
            "total": {"issued": total_issued, "used": total_used, "rate": rate(total_used, total_issued)},
            "groups": groups}
