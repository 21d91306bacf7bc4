"""The documented Besu QBFT topology stays consistent with the script that generates it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BESU = Path(__file__).resolve().parents[3] / "hardhat-free-devnet" / "besu"


def test_generated_besu_files_are_up_to_date() -> None:
    p = subprocess.run([sys.executable, str(BESU / "make_genesis.py"), "--check"], capture_output=True, text=True,
                       cwd=BESU, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_genesis_is_qbft_with_four_validators_and_zero_base_fee() -> None:
    genesis = json.loads((BESU / "genesis.json").read_text())
    assert "qbft" in genesis["config"]
    assert genesis["config"].get("zeroBaseFee") is True
    validators = json.loads((BESU / "validators.json").read_text())
    assert len(validators if isinstance(validators, list) else validators.get("validators", [])) == 4
