"""`lianzheng usage record|fetch|list` and `lianzheng indicators usage-rate` against a real API server and anvil:
an agency fetches a certificate a holder granted it (免证办: the document file is the owner's only), records a
usage, lists its usages, reads 用证率; refusals are one-line errors with a non-zero exit."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.devtools.samples import sample_values
from api.stack import LocalStack
from registry.formats.envelope import decode_key
from registry.holders.grants import Grant, Grantee
from registry.holders.keys import HolderKey, HolderPublicKey
from registry.holders.wrapping import wrap_key
from tests.support.anvil import make_devnet
from tests.support.cli import FirstCallReal

CLI = FirstCallReal()  # each command family's first call is a real process, later ones run in this process
pytestmark = [pytest.mark.anvil, pytest.mark.xdist_group("usage_cli")]

HRSS = "11230000MB1A000526"  # 省人社厅: the grantee
POLICE = "11230000MB1A00044B"  # 省公安厅: not the grantee


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    data_dir = tmp_path_factory.mktemp("usage-cli")
    devnet = make_devnet(data_dir, data_dir=data_dir)
    devnet.start()
    try:
        with LocalStack(data_dir, devnet=devnet, batch_max_age=0.2, checkpoint_interval=0) as s:
            yield s
    finally:
        devnet.stop()


def run(stack: LocalStack, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIANZHENG_DATA_DIR": str(stack.data_dir), "LIANZHENG_API_URL": stack.url, "COLUMNS": "200"}
    p = CLI(args, env=env)
    if ok:
        assert p.returncode == 0, p.stderr + p.stdout
    return p


def _granted(stack: LocalStack, tmp_path: Path, seed: int) -> tuple[str, dict[str, Any], Path]:
    """A certificate bound to a new holder, and the holder's grant to HRSS with the document key wrapped to HRSS's
    exchange key, anchored through the issuing node (POST /api/v1/grants) and written to grant.json."""
    api = httpx.Client(base_url=stack.url, timeout=60)
    holder = HolderKey.generate()
    ct = stack.node.seeds.certificate_types[2]
    issuer = stack.node.seeds.member(ct.issuers[0])
    [values] = sample_values(ct, 1, issuer=issuer, seed=seed)
    r = api.post("/api/v1/certificates?wait=true", json={"type": ct.code, "fields": values,
                                                          "holder_key": holder.public.spki_b64url},
                 headers=stack.auth(issuer.uscc))
    assert r.status_code == 201, r.text
    issued = r.json()
    exchange = api.get(f"/api/v1/agencies/{HRSS}/exchange-key").json()
    now = int(time.time())
    grant_id = os.urandom(16).hex()
    wrapped = wrap_key(decode_key(issued["qr_url"].split("#", 1)[1]), HolderPublicKey.from_b64url(exchange["public_key"]),
                       grant_id=grant_id)
    grant = Grant.build(certificate=issued["document"]["digest"]["sha256"], issuer=issuer.uscc,
                        holder_key=holder.public, grantee=Grantee.agency(HRSS), purpose="办理社保转移",
                        not_before=now - 600, expires=now + 86400, wrapped_key=wrapped, grant_id=grant_id).sign(holder)
    r = api.post("/api/v1/grants", json={"grant": grant.to_json()})
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 30
    while api.get(f"/api/v1/grants/{grant.digest.hex()}").json()["status"] != "active":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    path = tmp_path / "grant.json"
    path.write_text(json.dumps(grant.to_json(), ensure_ascii=False))
    return issued["identifier"], values, path


def test_an_agency_fetches_records_and_lists_usages_and_reads_the_usage_rate(stack: LocalStack, tmp_path: Path) -> None:
    identifier, values, grant = _granted(stack, tmp_path, 5)
    out = tmp_path / "document.json"
    p = run(stack, "usage", "fetch", identifier, "--grant", str(grant), "--purpose", "办理社保转移",
            "--agency", HRSS, "--out", str(out))
    assert "recorded" in p.stderr + p.stdout and "UR-" in p.stderr + p.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["identifier"] == identifier and doc["fields"]["持证主体"]["value"] == values["持证主体"]

    view = json.loads(run(stack, "usage", "record", identifier, "--grant", str(grant), "--purpose", "核对参保信息",
                          "--agency", HRSS, "--json").stdout)
    assert view["status"] == "recorded" and view["channel"] == "grant"
    listed = json.loads(run(stack, "usage", "list", "--agency", HRSS, "--json").stdout)
    assert [u["channel"] for u in listed["usages"]] == ["grant", "fetch"]
    table = run(stack, "usage", "list", "--agency", HRSS).stdout
    assert "用证记录" in table and "核对参保信息" in table and "2 usage(s)" in table

    rate = json.loads(run(stack, "indicators", "usage-rate", "--by", "type", "--json").stdout)
    group = next(g for g in rate["groups"] if g["key"] == identifier.split(".")[5])
    assert group["used"] == 1 and group["issued"] >= 1
    assert "用证率" in run(stack, "indicators", "usage-rate").stdout


def test_refusals_are_one_line_errors_with_a_non_zero_exit(stack: LocalStack, tmp_path: Path) -> None:
    identifier, _, grant = _granted(stack, tmp_path, 6)
    for args, code in (
        (("usage", "record", identifier, "--grant", str(grant), "--purpose", "x", "--agency", POLICE), "wrong_grantee"),
        (("usage", "record", identifier, "--purpose", "x", "--agency", HRSS), "missing_consent"),
        (("usage", "fetch", identifier, "--grant", str(tmp_path / "nope.json"), "--purpose", "x", "--agency", HRSS),
         "invalid_grant"),
        (("indicators", "usage-rate", "--by", "year"), "invalid_grouping"),
    ):
        p = run(stack, *args, ok=False)
        assert p.returncode != 0 and f"[{code}]" in p.stderr, (args, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_the_operator_page_draws_the_usage_rate_in_chromium(stack: LocalStack, tmp_path: Path) -> None:
    from tests.support.browser import chromium, shot

    _granted(stack, tmp_path, 7)  # at least one certificate of the type, so the chart has bars
    api = httpx.Client(base_url=stack.url, timeout=30)
    with chromium() as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{stack.url}/operator/usage-rate")
        page.wait_for_selector("body[data-loaded=agency]")
        by_agency = api.get("/api/v1/indicators/usage-rate", params={"by": "agency"}).json()
        assert page.locator("#chart svg rect.bar").count() == len(by_agency["groups"]) > 0
        assert "总体用证率" in page.locator("#total").inner_text()
        page.click("button[data-by=type]")
        page.wait_for_selector("body[data-loaded=type]")
        by_type = api.get("/api/v1/indicators/usage-rate", params={"by": "type"}).json()
        drawn = {r.get_attribute("data-key"): r.get_attribute("data-rate")
                 for r in page.locator("#chart svg rect.bar").all()}
        assert {k: float(v) if v else None for k, v in drawn.items()} == {g["key"]: g["rate"] for g in by_type["groups"]}
        assert page.locator("#table tbody tr").count() == len(by_type["groups"])
        shot(page, tmp_path, "usage-rate-by-type")
        page.click("#lang")
        # locator waits, not wait_for_function: a string predicate that needs polling is eval'd in the page, which
        # the page's CSP (no 'unsafe-eval') refuses
        page.wait_for_selector("html[lang=en]")
        page.wait_for_selector("#total:text-matches('^\\s*Overall')")
        assert errors == [], errors
