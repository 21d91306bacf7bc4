"""`lianzheng qr`, `print`, `trust-list pull|show` and `verify PHOTO` as an agency and a verifier would use them,
against a real API server and anvil (LocalStack), including offline verification once the chain and the API
are gone. The last test stops the chain: keep it last."""

from __future__ import annotations

import json
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.stack import LocalStack
from chain.devnet import free_port
from registry.formats.images import decode_qr_image, qr_png
from tests.support.cli import FirstCallReal
from tests.support.photos import photograph

pytestmark = pytest.mark.anvil

CLI = FirstCallReal()  # each command family's first call is a real process, later ones run in this process


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("qrcli"), batch_max_age=0.2) as s:
        yield s


def run(stack: LocalStack, *args: str, ok: bool = True, api_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIANZHENG_DATA_DIR": str(stack.data_dir), "LIANZHENG_API_URL": api_url or stack.url}
    p = CLI(args, env=env)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


@pytest.fixture(scope="module")
def issued(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Three 营业执照 issued with the CLI (which keeps their documents and QR keys in <data dir>/issued/)."""
    ct = stack.node.seeds.certificate_types[0]
    src = tmp_path_factory.mktemp("docs") / "docs.json"
    src.write_text(run(stack, "sample", "--type", ct.code, "--count", "3", "--seed", "5").stdout, encoding="utf-8")
    out = run(stack, "issue", "--agency", ct.issuers[0], "--type", ct.code, str(src), "--json").stdout
    return [json.loads(line)["id"] for line in out.splitlines()]


def _photo(path: Path, seed: int, angle: float) -> Path:
    shot = path.with_suffix(".jpg")
    shot.write_bytes(photograph(path.read_bytes(), rng=random.Random(seed), angle=angle))
    return shot


def _verify(stack: LocalStack, target: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    p = run(stack, "verify", target, "--json", ok=False, **kw)
    assert p.returncode in (0, 1), p.stderr
    return p.returncode, json.loads(p.stdout)


def test_qr_codes_of_both_modes_round_trip_through_photos(stack: LocalStack, issued: list[str], tmp_path: Path) -> None:
    ident = issued[0]
    saved = json.loads((stack.data_dir / "issued" / f"{ident}.json").read_text())
    run(stack, "qr", ident, "--mode", "ref", "--out", str(tmp_path / "ref.png"))
    assert decode_qr_image(tmp_path / "ref.png") == [saved["qr_url"]]
    code, result = _verify(stack, str(_photo(tmp_path / "ref.png", 1, 33)))
    assert code == 0 and result["verdict"] == "valid" and result["mode"] == "reference"
    assert result["fields"]["持证主体"] == saved["document"]["fields"]["持证主体"]["value"]
    assert result["checks"][0]["name"] == "integrity" and "SM3" in result["checks"][0]["reason_en"]

    pulled = json.loads(run(stack, "trust-list", "pull", "--json").stdout)
    assert pulled["members"] == len(stack.node.seeds.members) and pulled["as_of"]["block"] > 0
    p = run(stack, "qr", ident, "--mode", "offline", "--out", str(tmp_path / "offline.png"))
    assert "version" in p.stderr
    run(stack, "qr", ident, "--mode", "offline", "--out", str(tmp_path / "offline.svg"))
    assert (tmp_path / "offline.svg").read_text().lstrip().startswith("<svg")
    code, result = _verify(stack, str(_photo(tmp_path / "offline.png", 2, 180)))
    assert code == 0 and result["verdict"] == "valid" and result["mode"] == "offline"
    assert result["as_of"] == {"block": pulled["as_of"]["block"], "time": pulled["as_of"]["time"], "source": "trust_list"}

    assert _verify(stack, saved["qr_url"])[1]["verdict"] == "valid"  # the link itself works as well
    run(stack, "print", ident, "--out", str(tmp_path / "cert.html"))
    page = (tmp_path / "cert.html").read_text(encoding="utf-8")
    assert saved["document"]["fields"]["持证主体"]["value"] in page and ident in page and "<svg" in page


def test_a_revocation_reaches_offline_verifiers_with_the_next_trust_list(stack: LocalStack, issued: list[str],
                                                                         tmp_path: Path) -> None:
    ident = issued[1]
    run(stack, "qr", ident, "--mode", "offline", "--out", str(tmp_path / "offline.png"))
    photo = _photo(tmp_path / "offline.png", 3, 90)
    run(stack, "trust-list", "pull")
    assert _verify(stack, str(photo))[1]["verdict"] == "valid"
    run(stack, "revoke", ident, "--reason", "4")
    assert _verify(stack, str(photo))[1]["verdict"] == "valid"  # still the old list: "as of" says which
    run(stack, "trust-list", "pull")
    code, result = _verify(stack, str(photo))
    assert code == 1 and result["verdict"] == "revoked"
    assert "证照遗失" in next(c for c in result["checks"] if c["name"] == "status")["reason_zh"]
    shown = json.loads(run(stack, "trust-list", "show", "--json").stdout)
    assert shown["revoked"] >= 1 and shown["as_of"]["block"] == result["as_of"]["block"]


def test_foreign_and_truncated_codes_get_one_clear_line(stack: LocalStack, issued: list[str], tmp_path: Path) -> None:
    promo = tmp_path / "promo.png"
    promo.write_bytes(qr_png("https://example.com/promo?id=42"))
    p = run(stack, "verify", str(_photo(promo, 4, 7)), "--json", ok=False)
    assert p.returncode == 2 and p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert "这不是链证电子证照二维码" in p.stderr and "Not a Lianzheng certificate QR code" in p.stderr
    run(stack, "qr", issued[2], "--mode", "offline", "--out", str(tmp_path / "offline.png"))
    [payload] = decode_qr_image(tmp_path / "offline.png")
    short = tmp_path / "short.png"
    short.write_bytes(qr_png(payload[:-1]))  # a code printed from a payload that lost its last character
    cut = run(stack, "verify", str(_photo(short, 7, 33)), "--json", ok=False)
    assert cut.returncode == 2 and "truncated" in cut.stderr and "不完整" in cut.stderr, (cut.stdout, cut.stderr)
    assert len(cut.stderr.strip().splitlines()) == 1


def test_the_payload_text_itself_is_accepted(stack: LocalStack, issued: list[str], tmp_path: Path) -> None:
    run(stack, "qr", issued[2], "--mode", "offline", "--out", str(tmp_path / "offline.png"))
    run(stack, "trust-list", "pull")
    [payload] = decode_qr_image(tmp_path / "offline.png")
    code, result = _verify(stack, payload)
    assert code == 0 and result["verdict"] == "valid" and result["mode"] == "offline"


def test_offline_verification_needs_neither_chain_nor_api(stack: LocalStack, issued: list[str], tmp_path: Path) -> None:
    run(stack, "qr", issued[2], "--mode", "offline", "--out", str(tmp_path / "offline.png"))
    run(stack, "qr", issued[2], "--mode", "ref", "--out", str(tmp_path / "ref.png"))
    run(stack, "trust-list", "pull")
    photo, ref_photo = _photo(tmp_path / "offline.png", 5, 251), _photo(tmp_path / "ref.png", 6, 318)
    stack.devnet.stop()  # the chain is gone ...
    try:
        dead_api = f"http://127.0.0.1:{free_port()}"  # ... and so is the network
        code, result = _verify(stack, str(photo), api_url=dead_api)
        assert code == 0 and result["verdict"] == "valid" and result["mode"] == "offline"
        assert result["as_of"]["block"] > 0
        assert all(c["status"] == "VALID" for c in result["checks"])
        online = run(stack, "verify", str(ref_photo), "--json", ok=False, api_url=dead_api)
        assert online.returncode == 2 and "api_unreachable" in online.stderr  # by reference needs the API
    finally:
        stack.devnet.start()  # the other tests of this module (in any order) need the chain back


def test_payload_text_longer_than_a_file_name_is_still_verified(stack: LocalStack, issued: list[str],
                                                                  tmp_path: Path) -> None:
    run(stack, "qr", issued[2], "--mode", "offline", "--out", str(tmp_path / "offline.png"))
    run(stack, "trust-list", "pull")
    [payload] = decode_qr_image(tmp_path / "offline.png")
    # a payload whose first 300 characters contain no "/" is not a path on any file system (ENAMETOOLONG)
    assert len(payload) > 300
    p = run(stack, "verify", "./" + "x" * 300, ok=False)
    assert "File name too long" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
