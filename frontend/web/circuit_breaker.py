"""A circuit breaker around the backend calls of one worker process (closed/open/half-open).

- closed: calls go through; `failure_threshold` consecutive failures open the circuit.
- open: calls fail at once (`CircuitOpen`) for `reset_seconds`, without touching the network:
  a stalled backend no longer holds every worker thread for a whole timeout, so pages answer
  503 in milliseconds and the backend is not sent requests whose callers have given up.
- half-open: after `reset_seconds` exactly ONE call (the trial) goes through while the others
  still fail at once; its success closes the circuit, its failure opens it again.

Why our own (about 100 lines) and not a library: pybreaker holds its lock for the whole guarded
call, so every backend call of a worker's threads would run one after the other (measured: four
0.5 s calls took 2.0 s; danielfm/pybreaker#3, the PRs that removed the lock were closed
unmerged); purgatory and circuitbreaker take no lock at all and let every concurrent call
through in half-open, which on a stalled backend is a whole thread pool of trial calls.

The breaker is per process (each gunicorn worker has its own): a worker learns of an outage
from its own calls, at most `failure_threshold` of them. State changes are published through
`on_change(old, new)` (the metric `backend_circuit_breaker_state` and a log line).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]
STATES: tuple[State, ...] = ("closed", "open", "half_open")


class CircuitOpen(Exception):
    """Raised by `CircuitBreaker.acquire` while the circuit is open (or a trial is running)."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"circuit open, next trial in {retry_in:.1f} s")
        self.retry_in = retry_in


class CircuitBreaker:
    """Thread-safe breaker state; the lock is held only for state changes, never for a call.

    Use: `started = clock(); trial = breaker.acquire()` (raises `CircuitOpen`), make the call,
    then `breaker.record(success, trial, started)`. `failure_threshold` >= 1 consecutive
    failures open the circuit for `reset_seconds` (> 0). `clock` is `time.monotonic` (seconds).
    """

    def __init__(
        self,
        failure_threshold: int,
        reset_seconds: float,
        on_change: Callable[[State, State], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or reset_seconds <= 0:
            raise ValueError("failure_threshold must be >= 1 and reset_seconds > 0")
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False
        self._last_success = float("-inf")  # clock reading of the latest success

    @property
    def state(self) -> State:
        """The current state (an open circuit whose wait is over still says "open" until the
        next call starts the trial)."""
        return self._state

    def acquire(self) -> bool:
        """Admit a call: returns True when it is the half-open trial, False for a normal call.

        Raises `CircuitOpen` while open, and while another call is the trial.
        """
        with self._lock:
            if self._state == "closed":
                return False
            now = self._clock()
            wait = self._opened_at + self.reset_seconds - now
            if self._state == "open" and wait <= 0:
                self._change("half_open")
            if self._state == "half_open" and not self._trial_running:
                self._trial_running = True
                return True
            raise CircuitOpen(max(wait, 0.0))

    def record(self, success: bool, trial: bool, started: float | None = None) -> None:
        """Count the outcome of a call admitted by `acquire` (`trial` as it returned).

        `started` is the clock reading (seconds) when the call was admitted. A failed call
        during which another call succeeded does not count towards opening: the backend was
        answering, only slowly (a burst of pages on a busy machine timing out together used to
        open the circuit and turn two more seconds of pages into 503s). A stalled backend
        answers nothing, so its failures still open the circuit after `failure_threshold`.
        """
        with self._lock:
            if trial:
                self._trial_running = False
            if success:
                self._last_success = self._clock()
                self._failures = 0
                if self._state != "closed" and (trial or self._state == "half_open"):
                    self._change("closed")
                return
            if not trial and started is not None and started < self._last_success:
                return
            self._failures += 1
            if trial or (self._state == "closed" and self._failures >= self.failure_threshold):
                self._opened_at = self._clock()
                self._change("open")

    def _change(self, new: State) -> None:
        old, self._state = self._state, new
        if new == "closed":
            self._failures = 0
        if self._on_change is not None and old != new:
            self._on_change(old, new)
