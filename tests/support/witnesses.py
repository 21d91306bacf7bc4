"""Witness processes for tests: `lianzheng witness serve` as real subprocesses on free ports, each with its own
data dir, waited on until they answer (api/witnesses.py, the helper `lianzheng up` uses too)."""

from __future__ import annotations

from api.witnesses import WitnessProcess
from registry.logs.cosigning import log_vkeys

__all__ = ["WitnessProcess", "log_vkeys"]
