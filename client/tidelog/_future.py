"""``DeliveryFuture``: the result of one ``Producer.send``, light enough to make one per record.

A ``concurrent.futures.Future`` costs a condition variable and a lock per record, which at tens of
thousands of records a second is most of the producer's CPU. A ``DeliveryFuture`` shares one
``threading.Event`` with the other records of its batch; the event is set once every one of them
has its outcome (also when the batch was split and its halves were answered separately).
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable

from tidelog._types import RecordMetadata

__all__ = ["DeliveryFuture", "DeliverySignal"]


class DeliverySignal:
    """What the futures of one batch share: an event set when the last of them is done."""

    __slots__ = ("event", "lock", "pending")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.lock = threading.Lock()
        self.pending = 0


class DeliveryFuture:
    """Where a sent record was stored (``RecordMetadata``), once the broker answered.

    The subset of ``concurrent.futures.Future`` a producer's caller uses: ``result``, ``exception``,
    ``done`` and ``add_done_callback`` (called with the future, from the producer's thread).
    """

    __slots__ = ("_callbacks", "_done", "_exception", "_result", "_signal")

    def __init__(self, signal: DeliverySignal) -> None:
        self._signal = signal
        self._done = False
        self._result: RecordMetadata | None = None
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[DeliveryFuture], object]] | None = None
        with signal.lock:
            signal.pending += 1

    def done(self) -> bool:
        return self._done

    def cancelled(self) -> bool:
        return False  # a record handed to the producer is sent

    def cancel(self) -> bool:
        return False

    def _wait(self, timeout: float | None) -> None:
        if not self._done and not self._signal.event.wait(timeout) and not self._done:
            raise concurrent.futures.TimeoutError()

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Wait up to ``timeout`` seconds and return the metadata, or raise the delivery error."""
        self._wait(timeout)
        if self._exception is not None:
            raise self._exception
        assert self._result is not None
        return self._result

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._wait(timeout)
        return self._exception

    def add_done_callback(self, fn: Callable[[DeliveryFuture], object]) -> None:
        with self._signal.lock:
            if not self._done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        fn(self)

    def _settle(self, result: RecordMetadata | None, exception: BaseException | None) -> None:
        signal = self._signal
        with signal.lock:
            if self._done:
                return
            self._result, self._exception, self._done = result, exception, True
            callbacks, self._callbacks = self._callbacks, None
            signal.pending -= 1
            if signal.pending == 0:
                signal.event.set()
        for fn in callbacks or ():
            fn(self)

    def set_result(self, result: RecordMetadata) -> None:
        self._settle(result, None)

    def set_exception(self, exception: BaseException) -> None:
        self._settle(None, exception)
