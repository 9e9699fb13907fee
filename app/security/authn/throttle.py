"""Repeated authentication failures from one address are slowed, never locked out for good.

Each address may fail ``limit`` times within a sliding ``window_s``; past that, its requests are
answered 429 (error_code 42910) with ``Retry-After`` until its oldest counted failure leaves the
window. A success does not clear the count (a guesser who knows one good key must not reset it).
Memory is bounded: addresses with no failure inside the window are forgotten.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

__all__ = ["FailureThrottle"]

_MAX_ADDRESSES = 100_000


class FailureThrottle:
    def __init__(self, *, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after_s(self, address: str) -> int:
        """Seconds ``address`` must wait before trying again (0: it may try now)."""
        failures = self._failures.get(address)
        if failures is None:
            return 0
        now = self._clock()
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return 0
        if len(failures) < self.limit:
            return 0
        return max(1, math.ceil(failures[0] + self.window_s - now))

    def failed(self, address: str) -> None:
        now = self._clock()
        if len(self._failures) >= _MAX_ADDRESSES and address not in self._failures:
            self._forget_idle(now)
        failures = self._failures.setdefault(address, deque())
        failures.append(now)
        while len(failures) > self.limit:
            failures.popleft()

    def _forget_idle(self, now: float) -> None:
        for address in [a for a, f in self._failures.items() if not f or f[-1] <= now - self.window_s]:
            del self._failures[address]
        if len(self._failures) >= _MAX_ADDRESSES:  # all recent: drop the oldest half
            for address in list(self._failures)[: _MAX_ADDRESSES // 2]:
                del self._failures[address]
