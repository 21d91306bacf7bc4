"""`lianzheng bench offline`: offline QR verification in one process, without a devnet.

Makes ``--count`` distinct signed LZ2 payloads of a seeded certificate type (api/devtools/offline_workload.py:
documents as the issuing service builds them, anchored in batches of ``--batch-size``, a signed format-2 trust
list), verifies each once with every check, and reports the CPU time per verification (``time.process_time``:
what the process spent, steady on a shared machine) beside the wall-clock rate, for the intl profile (the
batch's statement: one secp256k1 recovery per batch) and the gm profile (one SM2 verification per batch), and
for the first intl form, still read, no longer written (``intl-body``: a secp256k1 signature over each
payload's body, recovered per payload). The baseline, measured in the same run on the same payloads, is the
same verifier all in Python: the per-field work (salts, leaf entries, hashes, the document's tree and batch
root) without the compiled module registry/certificates/_leaves.c, and the decoding (Base45, CBOR, the checks
of the payload) without registry/formats/_lz2.c. `lianzheng bench verify` measures the same verifier on
payloads from a real devnet.

    $ lianzheng bench offline --count 5000
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli._common import console, print_json, progress
from api.cli.options import JsonOpt

TARGET_PER_S = 10_000.0  # issue 16: one process


def register(app: typer.Typer) -> None:
    app.command("offline")(bench_offline)


def run_offline(count: int, batch_size: int, profiles: list[str], rounds: int = 2) -> dict[str, Any]:
    """Per profile: the verifier with the compiled modules (registry/certificates/_leaves.c,
    registry/formats/_lz2.c) and, as the baseline, all in Python (`python_only`), alternating ``rounds`` times
    each on the same payloads (fresh verifiers: no memo carried over); the best round of each, as a shared
    machine only ever slows a round down."""
    from api.devtools.offline_workload import cpu_rate, offline_workload
    from registry.certificates.fields import COMPILED, python_only
    from registry.certificates.offline import OfflineVerifier
    from registry.consortium.trust_list import TrustList

    rows = []
    with progress(transient=True) as bar:
        for profile in profiles:
            bar.add_task(f"{profile}: making {count:,} payloads", total=None, rate="")
            work = offline_workload(count, profile=profile, batch_size=batch_size)  # type: ignore[arg-type]
            trust = TrustList.from_json(work.trust_list)
            task = bar.add_task(f"{profile}: verifying", total=2 * rounds, rate="")
            best: dict[bool, dict[str, float]] = {}
            for _ in range(rounds):
                for compiled in (True, False):
                    if compiled and not COMPILED:
                        continue
                    with contextlib.nullcontext() if compiled else python_only():
                        rate = cpu_rate(OfflineVerifier(trust), work.texts)
                    if compiled not in best or rate["cpu_us"] < best[compiled]["cpu_us"]:
                        best[compiled] = rate
                    bar.advance(task)
            rate, python = best.get(True, best[False]), best[False]
            rows.append({"profile": profile, "payloads": len(set(work.texts)), "compiled": True in best,
                         "characters": round(sum(map(len, work.texts)) / len(work.texts)),
                         "cpu_us": round(rate["cpu_us"], 1), "cpu_per_s": round(rate["cpu_per_s"], 1),
                         "wall_us": round(rate["wall_us"], 1), "wall_per_s": round(1e6 / rate["wall_us"], 1),
                         "python_cpu_us": round(python["cpu_us"], 1)})
    return {"benchmark": "offline", "batch_size": batch_size, "results": rows, "target_per_s": TARGET_PER_S}


def bench_offline(
    count: Annotated[int, typer.Option("--count", min=10, max=200_000, help="distinct payloads per profile")] = 5000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=100_000)] = 1000,
    profile: Annotated[list[str] | None, typer.Option(
        "--profile", help="intl, gm, intl-body (the first intl form: a signature per payload); default: all")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Offline LZ2 verifications per second in one process (CPU and wall clock), both crypto profiles."""
    from api.devtools.offline_workload import PROFILES

    profiles = profile or list(PROFILES)
    if unknown := sorted(set(profiles) - set(PROFILES)):
        console.print(f"[bold red]unknown profile {', '.join(unknown)}: expected {', '.join(PROFILES)}[/]")
        raise typer.Exit(2)
    try:
        result = run_offline(count, batch_size, profiles)
    except RuntimeError as exc:  # a payload that did not verify: the run failed
        console.print(f"[bold red]{exc}[/]")
        raise typer.Exit(1) from exc
    if as_json:
        print_json(result)
        return
    table = Table(title=f"lianzheng bench offline (one process, distinct payloads, batches of {batch_size:,})")
    for col in ("profile", "payloads", "characters", "CPU µs / verification", "verifications/s (CPU)",
                "wall µs", "verifications/s (wall)", "baseline: all in Python, CPU µs", "speed-up", "vs 10,000/s"):
        table.add_column(col, justify="right")
    for r in result["results"]:
        table.add_row(r["profile"] + ("" if r["compiled"] else " (not compiled)"), f"{r['payloads']:,}",
                      str(r["characters"]), f"{r['cpu_us']:.0f}", f"{r['cpu_per_s']:,.0f}", f"{r['wall_us']:.0f}",
                      f"{r['wall_per_s']:,.0f}", f"{r['python_cpu_us']:.0f}", f"{r['python_cpu_us'] / r['cpu_us']:.2f}x",
                      f"{r['cpu_per_s'] / TARGET_PER_S:.2f}x")
    console.print(table)
    console.print("intl and gm payloads carry their batch's statement, checked once per batch; intl-body payloads "
                  "(the first intl form) a signature over each body, recovered once per payload")
