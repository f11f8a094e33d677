"""How long a page may wait for the backend: about a second, unless it is recently slower.

A fixed short timeout cannot tell a stalled backend (SIGSTOP: it never answers) from a slow
one (a machine three times slower, a slow route): one second made every page of a stalled
backend cost a second, but also turned the slow-but-working pages of a busy machine into 503
pages. So the budget follows what the backend recently needed, like TCP's retransmission
timeout follows the round trip:

- `seconds()` is twice the slowest recent successful wait (a maximum that halves every
  `half_life` seconds), at least `floor` (BACKEND_READ_TIMEOUT_SECONDS, 0.8 s) and at most
  `cap` (BACKEND_MAX_TIMEOUT_SECONDS, 5 s). A backend that answers in milliseconds gets the
  floor: when it stalls, a page costs about a second.
- `timed_out(budget)`: a call that ran out of budget doubles the next budget (up to the cap),
  so a cold or suddenly slower backend is learnt instead of failing every page forever.
- `succeeded(waited)`: records a wait (seconds from the page's arrival to the answer) and ends
  the back-off.
- A new worker, which has not had an answer yet, allows the cap: it cannot know yet how fast
  the backend is, and a cold start (first queries, a busy machine) slower than the floor used
  to fail its first pages at once, in parallel, which opened the circuit breaker and turned
  two more seconds of that worker's pages into 503s (seen as 1.9 % failed requests in the
  load gate's slow-machine self-test). TCP likewise uses a conservative timeout until its first
  round-trip sample (RFC 6298, section 2.1). The first answer ends this; the budget is then
  learnt as above. A backend stalled before a worker's first answer costs its first pages the
  cap, after which the breaker is open.

Per worker process, thread-safe.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class Budget:
    """The adaptive page budget (seconds) of one worker; see the module doc."""

    def __init__(
        self,
        floor: float,
        cap: float,
        half_life: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.floor = floor
        self.cap = max(cap, floor)
        self.half_life = half_life
        self._clock = clock
        self._lock = threading.Lock()
        self._slowest = 0.0  # decaying maximum of recent successful waits
        self._at = clock()
        self._backoff = 0.0  # budget after a timeout (0: none)
        self._answered = False  # no answer yet: the budget is the cap

    def _decayed(self, now: float) -> float:
        return self._slowest * math.pow(0.5, (now - self._at) / self.half_life)

    def seconds(self) -> float:
        """The budget for a page starting now."""
        with self._lock:
            if not self._answered:
                return self.cap
            wanted = max(2 * self._decayed(self._clock()), self._backoff)
        return min(max(wanted, self.floor), self.cap)

    def succeeded(self, waited: float) -> None:
        """A call answered after the page had waited `waited` seconds in all."""
        with self._lock:
            now = self._clock()
            self._slowest = max(waited, self._decayed(now))
            self._at = now
            self._backoff = 0.0
            self._answered = True

    def timed_out(self, budget: float) -> None:
        """A call ran out of the page's `budget`: the next page gets twice as long."""
        with self._lock:
            self._backoff = min(max(self._backoff, 2 * budget), self.cap)
