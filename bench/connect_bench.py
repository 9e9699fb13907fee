"""file-source throughput against raw produce: ``python -m bench.connect_bench [--lines N]``.

Starts one broker (SQLite catalog) on loopback and measures, in the same run:

- baseline: ``N`` short lines produced by the client's idempotent ``acks=all`` AsyncProducer;
- file-source: the same ``N`` lines written to a file, read by a ``file-source`` connector run by a
  worker in this process, until the topic holds all of them.

Prints lines/s of both and their ratio; the target (docs/connect.md, issue 16) is a ratio ≥ 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from tests.broker_process import BrokerProcess
from tidelog import AsyncClient
from tidelog.connect.worker import Worker

TARGET_RATIO = 0.5


async def _baseline(url: str, lines: list[str]) -> float:
    async with AsyncClient(url) as client:
        await client.admin.create_topic("baseline")
        started = time.perf_counter()
        async with client.producer(acks="all", idempotent=True) as producer:
            for line in lines:
                await producer.send("baseline", line)
            await producer.flush()
        return len(lines) / (time.perf_counter() - started)


def _high_watermark(url: str, topic: str) -> int:
    answer = httpx.get(f"{url}/v1/topics/{topic}", timeout=10)
    if answer.status_code != 200:
        return 0
    return int(answer.json()["partitions"][0]["high_watermark"])


async def _file_source(url: str, lines: list[str], directory: Path) -> float:
    path = directory / "lines.txt"
    path.write_text("".join(line + "\n" for line in lines))
    worker = Worker(url, worker_id="bench")
    runner = asyncio.create_task(worker.run())
    try:
        started = time.perf_counter()
        answer = httpx.post(
            f"{url}/v1/connectors",
            json={
                "name": "lines",
                "config": {"connector.class": "file-source", "file": str(path), "topic": "lines"},
            },
            timeout=10,
        )
        answer.raise_for_status()
        while await asyncio.to_thread(_high_watermark, url, "lines") < len(lines):
            await asyncio.sleep(0.05)
        return len(lines) / (time.perf_counter() - started)
    finally:
        worker.request_stop()
        await runner
        await worker.client.aclose()


async def _main(count: int) -> None:
    lines = [f"line {i:08d} of the connect benchmark" for i in range(count)]
    with tempfile.TemporaryDirectory() as tmp:
        broker = BrokerProcess(Path(tmp) / "data").start()
        try:
            baseline = await _baseline(broker.url, lines)
            source = await _file_source(broker.url, lines, Path(tmp))
        finally:
            broker.stop()
    ratio = source / baseline
    print(f"raw produce (acks=all, idempotent): {baseline:,.0f} lines/s")
    print(f"file-source:                        {source:,.0f} lines/s")
    print(f"ratio: {ratio:.2f}x (target >= {TARGET_RATIO}x: {'met' if ratio >= TARGET_RATIO else 'missed'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=50_000, help="lines to send each way")
    args = parser.parse_args()
    asyncio.run(_main(args.lines))


if __name__ == "__main__":
    main()
