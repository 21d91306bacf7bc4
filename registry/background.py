"""One pass repeated in a daemon thread: the loop every background service of a node shares (the outbox
worker, the chain inbox, the checkpoint gateway, a witness's Backbone cosigner).

A subclass names its thread, says which errors are outages (the chain or a peer is down: logged as a warning,
retried) and implements `run_pass()`. The loop never dies: any other error is logged with its traceback and
retried too, with the same doubling backoff up to `max_backoff`. `start()` after `stop()` starts a new thread
(an elected leader stops and restarts its services when it loses and regains the lease).

>>> import time
>>> class Count(PollingLoop):
...     thread_name = "count"
...     def __init__(self) -> None:
...         super().__init__(poll=0.01, max_backoff=0.02)
...         self.passes = 0
...     def run_pass(self) -> bool:
...         self.passes += 1
...         return self.passes < 3  # work twice (at once again), then idle polls
>>> loop = Count().start()
>>> deadline = time.monotonic() + 10
>>> while loop.passes < 5 and time.monotonic() < deadline:
...     time.sleep(0.01)
>>> loop.stop(); loop.running, loop.passes >= 5
(False, True)
>>> loop.start().running  # a new thread after a stop
True
>>> loop.stop()
"""

from __future__ import annotations

import threading

import structlog

__all__ = ["PollingLoop"]

log = structlog.get_logger("lianzheng.background")


class PollingLoop:
    """Calls `run_pass()` every `poll` seconds (at once again when it says it did work, or after `wake()`)."""

    thread_name = "background"
    #: errors that mean "the chain / a peer is unavailable": a warning, not a traceback
    outages: tuple[type[BaseException], ...] = (OSError,)
    #: wait one poll before the first pass (services that should not act the moment they start)
    wait_first = False
    #: the longest wait between passes that found nothing to do: each idle pass doubles the wait from `poll` up
    #: to this (work or `wake()` brings it back to `poll`). An idle API process polled its database and the
    #: chain ten times a second, a quarter of a core on a 2-core machine (issue 16); 0: always `poll`
    idle_max = 0.0
    #: a successful pass clears `last_error` (False: the error stays until the next one replaces it, e.g. a
    #: witness's refusal of a checkpoint, which later passes skip without failing)
    clear_error_on_success = True

    def __init__(self, *, poll: float, max_backoff: float) -> None:
        self.poll = poll
        self.max_backoff = max_backoff
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what a subclass provides ----------------------------------------------------------------------
    def run_pass(self) -> bool:
        """One pass; True when it did work and the next pass should follow at once."""
        raise NotImplementedError

    def on_outage(self, exc: BaseException) -> None:
        """Called with each outage before the backoff (e.g. to reset senders); `last_error` is already set."""

    def backoff_cap(self, exc: BaseException) -> float:
        """The longest wait after this error (a subclass may retry some errors sooner)."""
        return self.max_backoff

    def error_text(self, exc: BaseException) -> str:
        return str(exc)

    # -- the thread ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> PollingLoop:
        if self.running:  # started again after a stop: let the previous thread finish its pass first
            assert self._thread is not None
            self._thread.join()
        self._stop.clear()
        self._wake.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        backoff = idle = self.poll
        if self.wait_first and self._stop.wait(self.poll):
            return
        while not self._stop.is_set():
            try:
                worked = self.run_pass()
                backoff = self.poll
                if self.clear_error_on_success:
                    self.last_error = None
                if worked:
                    idle = self.poll
                    continue
                wait, idle = idle, min(idle * 2, max(self.idle_max, self.poll))
            except self.outages as exc:
                self.last_error = self.error_text(exc)
                self.on_outage(exc)
                wait = backoff = min(max(backoff, self.poll) * 2, self.backoff_cap(exc))
                log.warning("unavailable; will retry", service=self.thread_name, error=self.last_error,
                            backoff=backoff)
            except Exception as exc:  # never let the loop die
                self.last_error = repr(exc)
                wait = backoff = min(max(backoff, self.poll) * 2, self.backoff_cap(exc))
                log.exception("background service error; will retry", service=self.thread_name, error=repr(exc))
            if self._wake.wait(wait):
                idle = self.poll  # woken: work may be waiting
            self._wake.clear()
