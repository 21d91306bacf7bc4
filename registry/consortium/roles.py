"""Who may act: an agency's consortium role as the registry's member mirror shows it (the contracts check
it again on chain), and the short agency reference the views show.

    >>> with node.db.session() as s:                                                # doctest: +SKIP
    ...     require_role(s, "11230000MB1A00044B", Role.EVIDENCE, "missing_evidence_role")
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from chain.contracts import MemberStatus, Role
from registry.errors import PermissionDeniedError
from registry.store.db import Member

__all__ = ["agency_json", "is_auditor", "require_role"]


def require_role(s: Session, agency: str, role: Role, code: str) -> Member:
    """The acting agency must be an Active member holding `role` (the contracts check it again)."""
    member = s.get(Member, agency)
    if member is None:
        raise PermissionDeniedError(f"agency {agency} is not a consortium member", code="not_a_member")
    if member.status != int(MemberStatus.ACTIVE):
        raise PermissionDeniedError(f"agency {agency} is {MemberStatus(member.status).name.lower()}, not active",
                                    code="member_not_active")
    if not Role(member.roles) & role:
        raise PermissionDeniedError(
            f"agency {agency} ({member.name}) does not hold the {(role.name or str(role)).lower()} role "
            f"(it holds: {', '.join(Role(member.roles).names()) or 'none'})", code=code)
    return member


def agency_json(s: Session, uscc: str | None) -> dict[str, Any] | None:
    """{uscc, name, short_name, bid} of an agency (names None when it is not a member)."""
    if uscc is None:
        return None
    m = s.get(Member, uscc)
    if m is None:
        return {"uscc": uscc, "name": None, "short_name": None, "bid": None}
    return {"uscc": uscc, "name": m.name, "short_name": m.short_name or m.name, "bid": m.bid}


def is_auditor(s: Session, agency: str) -> bool:
    """An Active member holding the auditor role (it may read every record)."""
    m = s.get(Member, agency)
    return bool(m is not None and Role(m.roles) & Role.AUDITOR and m.status == int(MemberStatus.ACTIVE))
