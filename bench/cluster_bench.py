"""Replicated produce throughput: ``python -m bench.cluster_bench [--seconds S] [--partitions N]``.

Starts a single broker (SQLite catalog) and a three-broker cluster (``--cluster``, PostgreSQL at
``TIDELOG_TEST_POSTGRES_URL``, a fresh schema) on loopback, each with fresh data directories, and
measures the produce rate of ``SENDERS`` concurrent HTTP producers sending batches of ``BATCH``
100-byte records to a topic of ``--partitions`` partitions (default 3) for ``--seconds``:

- single node, replication factor 1, ``acks=1``;
- cluster, replication factor 3, ``min.insync.replicas=2``, ``acks=all`` (each request sent to
  its partition's leader: every acknowledged batch is on all three brokers).

Prints records/s of both and the cluster's share of the single node's rate. All processes share
one machine, so the cluster's three brokers and their replica fetchers compete for its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
from sqlalchemy import create_engine, text

from app.catalog.db import normalise_url
from tests.broker_process import BrokerProcess
from tests.cluster.harness import Cluster

SENDERS = 8
BATCH = 100
PARTITIONS = 3
VALUE = "x" * 100


async def _drive(urls: dict[int, str], topic: str, acks: str, seconds: float, partitions: int) -> float:
    body = {"records": [{"value": VALUE} for _ in range(BATCH)]}
    sent = 0
    deadline = time.monotonic() + seconds

    async def sender(i: int, client: httpx.AsyncClient) -> None:
        nonlocal sent
        partition = i % partitions
        url = f"{urls[partition]}/v1/topics/{topic}/partitions/{partition}/records"
        while time.monotonic() < deadline:
            answer = await client.post(url, params={"acks": acks}, json=body)
            if answer.status_code != 200:
                raise RuntimeError(f"produce answered {answer.status_code}: {answer.text[:200]}")
            sent += BATCH

    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30, follow_redirects=True) as client:
        await asyncio.gather(*(sender(i, client) for i in range(max(SENDERS, partitions))))
    return sent / (time.monotonic() - started)


def single_node(root: Path, seconds: float, partitions: int = PARTITIONS) -> float:
    broker = BrokerProcess(root / "single" / "data", settings={"log_retention_check_interval_ms": 3_600_000})
    broker.start()
    try:
        with httpx.Client(timeout=30) as http:
            answer = http.post(f"{broker.url}/v1/topics", json={"name": "bench", "partitions": partitions})
            answer.raise_for_status()
        urls = dict.fromkeys(range(partitions), broker.url)
        return asyncio.run(_drive(urls, "bench", "1", seconds, partitions))
    finally:
        broker.stop()


def cluster(root: Path, postgres_url: str, seconds: float, partitions: int = PARTITIONS) -> float:
    base = normalise_url(postgres_url)
    schema = f"tidelog_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    started = Cluster(root / "cluster", f"{base}{separator}options={quote(f'-csearch_path={schema}')}")
    try:
        started.start()
        started.wait_alive({0, 1, 2})
        answer = started.create_topic("bench", partitions=partitions, replication_factor=3,
                                      min_insync_replicas=2)
        answer.raise_for_status()
        leaders = {p["partition"]: started.url(p["leader"]) for p in answer.json()["partitions"]}
        time.sleep(1.0)  # every broker has read the new topic's leadership
        return asyncio.run(_drive(leaders, "bench", "all", seconds, partitions))
    finally:
        started.stop()
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--partitions", type=int, default=PARTITIONS)
    args = parser.parse_args()
    url = os.environ.get("TIDELOG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        one = single_node(root, args.seconds, args.partitions)
        three = cluster(root, url, args.seconds, args.partitions)
    print(f"single node rf=1 acks=1: {one:,.0f} records/s")
    print(f"cluster rf=3 acks=all:   {three:,.0f} records/s ({three / one:.0%} of single node acks=1)")


if __name__ == "__main__":
    main()
