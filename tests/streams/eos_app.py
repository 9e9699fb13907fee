"""The application of the crash tests, runnable as ``python -m tests.streams.eos_app URL STATE_DIR``.

Kafka's EosTestDriver topology: keyed integers in ``data``; per key, ``sum`` and ``max`` straight
from the input partition, and ``cnt`` after a repartition (re-keyed), so state is checked on both
sides of a repartition topic.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import tidelog.streams as ts


def build(url: str, state_dir: str, *, commit_interval_ms: int = 200) -> ts.App:
    # Small changelog segments that the broker compacts every few hundred ms (the test's broker
    # checks retention often), so compaction races the crashes and restores.
    app = ts.App(
        "eos",
        url=url,
        state_dir=state_dir,
        commit_interval_ms=commit_interval_ms,
        session_timeout_ms=3000,
        repartition_purge_interval_ms=500,
        changelog_configs={"segment.bytes": 200, "min.cleanable.dirty.ratio": 0.01},
    )
    data = app.stream("data")
    grouped = data.group_by_key()
    grouped.aggregate(lambda: 0, lambda k, v, a: a + v, store="sum").to_stream().to("sum")
    grouped.reduce(max, store="max").to_stream().to("max")
    data.select_key(lambda k, v: f"r-{k}").group_by_key(name="cnt").count(store="cnt").to_stream().to("cnt")
    return app


def main(argv: list[str]) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(process)d %(name)s %(message)s")
    logging.getLogger("tidelog.streams").setLevel(logging.INFO)
    app = build(argv[0], argv[1], commit_interval_ms=int(argv[2]) if len(argv) > 2 else 200)

    def stop(*_: Any) -> None:
        app.stop()

    signal.signal(signal.SIGTERM, stop)
    app.run()


if __name__ == "__main__":
    main(sys.argv[1:])
