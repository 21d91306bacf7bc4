"""The replay rules of SealRegistry (电子印章), with the contract's authority rules judged at each event's block:

* ``MakerKeyPublished``: sent by an account of the seal maker (the member the event names), Active with the
  admin role; a key is published once;
* ``SealCreated``: sent by an account of the agency the event names, Active with the issuer role; a seal id
  is created once, with validFrom < validUntil;
* ``SealSuspended`` / ``SealReinstated`` / ``SealRevoked``: sent by an account of the seal's own agency,
  Active with the issuer role; suspend an Active seal, reinstate a Suspended one, revoke any but a Revoked one.

A seal action by an account without that right is ``seal_action_unauthorised`` (possible only if the
contract or the consortium it consults were wrong); a transition the contract forbids is
``illegal_transition``. The sender is the transaction's (events do not name it): registry/audit/fetch.py reads
it from the receipt.

    >>> from registry.audit.rules import Rules
    >>> from registry.audit.state import ReplayState
    >>> sorted(SealRules(Rules(ReplayState())).handled())
    ['MakerKeyPublished', 'SealCreated', 'SealReinstated', 'SealRevoked', 'SealSuspended']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from chain.contracts import Role, unpad
from chain.logs import Event
from registry.audit.state import ReplayState, SealState, TxEvent


class Rules(Protocol):
    """What the seal rules use of registry/audit/rules.py `Rules`: the state and who held what at this block."""

    s: ReplayState
    partial: bool

    def member_of(self, account: str) -> str | None: ...

    def member_has(self, uscc: str | None, role: Role) -> bool: ...

    def has_role(self, account: str, role: Role) -> bool: ...

    def describe(self, account: str) -> str: ...

    def finding(self, kind: str, ledger: str, ref: str, detail: str) -> None: ...

LEDGER = "seals"
CONTRACT = "SealRegistry"
_TO = {"SealSuspended": ("suspended", ("active",), "suspension"),
       "SealReinstated": ("active", ("suspended",), "reinstatement"),
       "SealRevoked": ("revoked", ("active", "suspended"), "revocation")}


def _hex(value: bytes | bytearray) -> str:
    return "0x" + bytes(value).hex()


def index_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """An event's arguments as the seal index stores them (registry/seals/index.py: bytes as 0x-hex)."""
    return {k: _hex(v) if isinstance(v, (bytes, bytearray)) else v for k, v in args.items()}


def seal_key(e: Event) -> str:
    return _hex(e.args["keyDigest"] if e.name == "MakerKeyPublished" else e.args["id"])


class SealRules:
    """SealRegistry's events applied to `rules.s` (seals, maker keys, the index's expected copy)."""

    def __init__(self, rules: Rules) -> None:
        self.r = rules
        self._handlers: Mapping[str, Callable[[Event, str | None], None]] = {
            "MakerKeyPublished": self.on_maker_key, "SealCreated": self.on_created,
            **{name: self.on_change for name in _TO}}

    def handled(self) -> set[str]:
        return set(self._handlers)

    def apply(self, e: Event, timestamp: int, sender: str | None) -> None:
        s = self.r.s
        s.events[LEDGER] = s.events.get(LEDGER, 0) + 1
        s.block_times.setdefault(e.block_number, timestamp)
        key, tx = seal_key(e), e.tx_hash.lower()
        args = {k: _hex(v) if isinstance(v, (bytes, bytearray)) and not k.endswith("Uscc") else v
                for k, v in e.args.items()}
        args.update({k: unpad(v) for k, v in e.args.items() if k.endswith("Uscc")})
        s.txs[tx] = (*s.txs.get(tx, ()), TxEvent(LEDGER, e.name, key, e.block_number, e.block_hash.lower(), args))
        s.seal_events[f"{tx}:{e.log_index}"] = TxEvent(LEDGER, e.name, key, e.block_number, e.block_hash.lower(),
                                                       index_args(e.args))
        handler = self._handlers.get(e.name)
        if handler is not None:
            handler(e, sender)

    # -- who may --
    def _may(self, sender: str | None, uscc: str, role: Role) -> bool:
        """The contract's test: the sender is an account of `uscc`, an Active member holding `role`. Without
        the sender (its receipt unreadable) the member's own rights are all that can be judged."""
        if sender is None:
            return self.r.member_has(uscc, role)
        return self.r.member_of(sender) == uscc and self.r.has_role(sender, role)

    def _who(self, sender: str | None) -> str:
        return self.r.describe(sender) if sender is not None else "the sending account could not be read"

    def _unauthorised(self, e: Event, ref: str, what: str, sender: str | None) -> None:
        self.r.finding("seal_action_unauthorised", LEDGER, ref,
                       f"{what} in block {e.block_number} (tx {e.tx_hash}), but {self._who(sender)}")

    # -- events --
    def on_maker_key(self, e: Event, sender: str | None) -> None:
        key, maker = seal_key(e), unpad(e.args["makerUscc"])
        if not self._may(sender, maker, Role.ADMIN):
            self._unauthorised(e, key, f"seal maker key published for {maker} (needs an admin account of the "
                                       f"maker)", sender)
        if key in self.r.s.maker_keys:
            self.r.finding("illegal_transition", LEDGER, key, f"maker key published again in block {e.block_number} "
                                                              f"(first in block {self.r.s.maker_keys[key]})")
            return
        self.r.s.maker_keys[key] = e.block_number

    def on_created(self, e: Event, sender: str | None) -> None:
        a, key = e.args, seal_key(e)
        agency = unpad(a["agencyUscc"])
        if not self._may(sender, agency, Role.ISSUER):
            self._unauthorised(e, key, f"seal created for {agency} (needs an issuer account of that agency)", sender)
        if key in self.r.s.seals:
            self.r.finding("illegal_transition", LEDGER, key, f"seal created again in block {e.block_number}")
            return
        valid_from, valid_until = int(a["validFrom"]), int(a["validUntil"])
        if valid_from >= valid_until:
            self.r.finding("illegal_transition", LEDGER, key, f"seal created in block {e.block_number} with an empty "
                                                              f"validity ({valid_from} .. {valid_until})")
        self.r.s.seals[key] = SealState(agency, _hex(a["imageDigest"]), _hex(a["keyDigest"]),
                                        _hex(a["sealInfoDigest"]), valid_from, valid_until, e.block_number,
                                        ((e.block_number, "active"),))

    def on_change(self, e: Event, sender: str | None) -> None:
        key, named = seal_key(e), unpad(e.args["agencyUscc"])
        to, allowed, what = _TO[e.name]
        seal = self.r.s.seals.get(key)
        if seal is None:
            if not self.r.partial:
                self.r.finding("illegal_transition", LEDGER, key, f"{what} in block {e.block_number} of a seal never "
                                                                  f"created")
            return
        if named != seal.agency:
            self.r.finding("illegal_transition", LEDGER, key, f"{what} in block {e.block_number} names agency {named}; "
                                                              f"the seal belongs to {seal.agency}")
        if not self._may(sender, seal.agency, Role.ISSUER):
            self._unauthorised(e, key, f"{what} of a seal of {seal.agency} (needs an issuer account of that agency)",
                               sender)
        if seal.status not in allowed:
            self.r.finding("illegal_transition", LEDGER, key, f"{what} in block {e.block_number} of a seal that was "
                                                              f"{seal.status}")
        self.r.s.seals[key] = replace(seal, changes=(*seal.changes, (e.block_number, to)))


__all__ = ["CONTRACT", "LEDGER", "SealRules", "index_args", "seal_key"]
