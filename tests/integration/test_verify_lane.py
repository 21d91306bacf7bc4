"""Verifications run in a bounded lane (api/lanes.py, api/routes/verify.py): at most LIANZHENG_VERIFY_THREADS at once, each in
a worker thread, never on the event loop; 32 concurrent clients are all answered, each correctly."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from api.devtools.samples import sample_values
from api.lanes import VerificationLane, outside_the_lane
from tests.conftest import Api, make_api


class _Gauge:
    """How many wrapped calls run at once (the most seen), and whether any ran on an event loop's thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = self.most = self.calls = 0
        self.on_loop = False

    @contextmanager
    def track(self) -> Iterator[None]:
        try:
            asyncio.get_running_loop()
            self.on_loop = True
        except RuntimeError:
            pass
        with self.lock:
            self.active += 1
            self.calls += 1
            self.most = max(self.most, self.active)
        try:
            time.sleep(0.003)  # long enough that concurrent requests overlap here
            yield
        finally:
            with self.lock:
                self.active -= 1

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self.track():
                return fn(*args, **kwargs)
        return wrapped


def test_the_lane_runs_at_most_its_threads_at_once() -> None:
    gauge, lane = _Gauge(), VerificationLane(2)

    def work(i: int) -> int:
        with gauge.track():
            return i * i

    async def main() -> list[int]:
        results: list[int] = [0] * 32

        async def one(i: int) -> None:
            results[i] = await lane.run(work, i)

        async with anyio.create_task_group() as tg:
            for i in range(32):
                tg.start_soon(one, i)
        return results

    assert anyio.run(main) == [i * i for i in range(32)]
    assert gauge.most == 2 and gauge.calls == 32 and not gauge.on_loop
    with pytest.raises(ValueError, match="at least 1"):
        VerificationLane(0)


def test_a_verification_waiting_on_another_node_gives_its_slot_back() -> None:
    """A lane of one: while the first verification waits on the network (a slow member node), a second one runs
    to its end; the first then takes the slot back and finishes; outside a lane the context does nothing."""
    lane, started, remote_answers, order = VerificationLane(1), threading.Event(), threading.Event(), []

    def slow_remote() -> str:
        started.set()  # it holds the lane's one slot
        with outside_the_lane():
            assert remote_answers.wait(20), "the second verification never ran: the slot was not given back"
        order.append("slow done")
        return "slow"

    def quick() -> str:
        order.append("quick done")
        remote_answers.set()
        return "quick"

    async def main() -> list[str]:
        results: list[str] = []
        async with anyio.create_task_group() as tg:
            async def first() -> None:
                results.append(await lane.run(slow_remote))
            tg.start_soon(first)
            await anyio.to_thread.run_sync(started.wait)
            results.append(await lane.run(quick))
        return results

    assert sorted(anyio.run(main)) == ["quick", "slow"]
    assert order == ["quick done", "slow done"]
    with outside_the_lane():  # not in a lane: nothing to give back
        pass


@pytest.fixture
def api_one_thread(anvil_node: Any, tmp_path: Path) -> Iterator[Api]:
    yield from make_api(anvil_node, tmp_path / "api", verify_threads=1)


@pytest.mark.parametrize("threads", [2, 1])
def test_32_concurrent_clients_are_all_answered_correctly(threads: int, request: pytest.FixtureRequest) -> None:
    api: Api = request.getfixturevalue("api" if threads == 2 else "api_one_thread")
    ct = api.node.seeds.certificate_types[0]
    issuer = api.node.seeds.member(ct.issuers[0])
    r = api.client.post("/api/v1/certificates/batch?wait=true", headers=api.auth(issuer.uscc),
                        json={"type": ct.code, "documents": sample_values(ct, 4, issuer=issuer, seed=13)})
    assert r.status_code == 201, r.text
    certs = r.json()["certificates"]
    revoked = certs[3]["identifier"]
    change = api.client.post(f"/api/v1/certificates/{revoked}/revoke", json={"reason": 4},
                             headers=api.auth(issuer.uscc))
    assert change.status_code == 200, change.text
    api.services.index.refresh(force=True)
    # each request and the answer it must get: documents, identifiers, a revoked one, a bad one
    cases: list[tuple[Any, int, str]] = []
    for c in certs[:3]:
        cases += [(c["document"], 200, "valid"), ({"identifier": c["identifier"]}, 200, "valid")]
    cases += [(certs[3]["document"], 200, "revoked"), ({"identifier": revoked}, 200, "revoked"),
              ({"identifier": 5}, 422, "invalid_identifier")]
    verifier, gauge = api.services.verifier, _Gauge()
    verifier.verify_document = gauge.wrap(verifier.verify_document)
    verifier.verify_identifier = gauge.wrap(verifier.verify_identifier)

    def client(k: int) -> list[tuple[int, str, int, str]]:
        seen = []
        for j in range(6):
            body, status, expected = cases[(k + j) % len(cases)]
            r = api.client.post("/api/v1/verify", json=body)
            got = r.json()["verdict"] if r.status_code == 200 else r.json()["error"]["code"]
            seen.append((r.status_code, got, status, expected))
        return seen

    start = threading.Barrier(32)

    def together(k: int) -> list[tuple[int, str, int, str]]:
        start.wait()
        return client(k)

    with ThreadPoolExecutor(32) as pool:
        answers = [a for batch in pool.map(together, range(32)) for a in batch]
    assert len(answers) == 32 * 6
    wrong = [a for a in answers if (a[0], a[1]) != (a[2], a[3])]
    assert not wrong, wrong[:5]
    assert gauge.calls == sum(1 for a in answers if a[2] == 200)
    assert gauge.most == threads, f"at most {threads} verifications at once, saw {gauge.most}"
    assert not gauge.on_loop, "a verification ran on the event loop"


def test_a_bug_inside_the_shortcut_is_a_500_with_the_error_shape(api: Api) -> None:
    def broken(identifier: str) -> Any:
        raise RuntimeError(f"lookup failed for {identifier!r}")

    api.services.verifier.verify_identifier = broken
    r = api.client.post("/api/v1/verify", json={"identifier": "1.2.156.3005.2.x"}, headers={"X-Request-ID": "bug-1"})
    assert r.status_code == 500, r.text
    assert r.json()["error"]["code"] == "internal_error" and r.json()["error"]["request_id"] == "bug-1"
    assert "RuntimeError" not in r.text and "1.2.156" not in r.text
    # a refused body still goes through the app's handlers, not to the 500
    r = api.client.post("/api/v1/verify", json={"identifier": 5})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_identifier"


def test_the_node_hands_its_requests_to_other_nodes_the_lanes_release(api: Api) -> None:
    # every request to another node (registry/certificates/remote.py) goes through the release above
    assert api.services.verifier.remote.waiting is outside_the_lane
