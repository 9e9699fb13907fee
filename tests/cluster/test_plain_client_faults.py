"""A plain HTTP client (no idempotence) that follows redirects sends every id exactly once while
leaders are SIGKILLed, restarted and moved back to their preferred replica: no acknowledged id is
duplicated or lost, because a redirect is only ever answered before anything was appended.

Before the fix, a write appended on a leader that lost its leadership while waiting for the ISR was
answered 307: the client followed it and the new leader appended the id a second time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.cluster.harness import SESSION_TIMEOUT_MS, Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.slow]

TOPIC = "plain"
PARTITIONS = (0, 1, 2)


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    started = Cluster(tmp_path, pg_url, size=3)
    try:
        started.start()
        started.wait_alive({0, 1, 2})
        yield started
    finally:
        started.stop()


@dataclass
class Sender:
    partition: int
    acked: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)


def _send(cluster: Cluster, sender: Sender, stop: threading.Event) -> None:
    """Each id once, acks=all, to the brokers in turn; an id that is not acknowledged is never resent."""
    n = 0
    with httpx.Client(timeout=3.0, follow_redirects=True) as http:
        while not stop.is_set():
            value = f"p{sender.partition}-{n}"
            n += 1
            broker = cluster.brokers[n % len(cluster.brokers)]
            try:
                answer = http.post(
                    f"{broker.url}/v1/topics/{TOPIC}/partitions/{sender.partition}/records",
                    params={"acks": "all"},
                    json={"records": [{"value": value}]},
                )
            except httpx.HTTPError as exc:
                sender.answers[type(exc).__name__] += 1
                sender.unknown.append(value)
                time.sleep(0.02)
                continue
            if answer.status_code == 200:
                sender.acked.append(value)
            else:
                sender.answers[str(answer.json().get("error_code", answer.status_code))] += 1
                sender.unknown.append(value)
                time.sleep(0.02)


def _leader(cluster: Cluster, partition: int) -> int:
    return int(cluster.wait_partition(TOPIC, partition, lambda s: s["leader"] is not None)["leader"])


def test_a_redirect_following_client_never_writes_an_acknowledged_id_twice(cluster: Cluster) -> None:
    answer = cluster.create_topic(TOPIC, partitions=3, replication_factor=3, min_insync_replicas=2)
    assert answer.status_code in (201, 202), answer.text
    for partition in PARTITIONS:
        cluster.wait_partition(TOPIC, partition, lambda s: len(s["isr"]) == 3)
    senders = [Sender(p) for p in PARTITIONS]
    stop = threading.Event()
    threads = [threading.Thread(target=_send, args=(cluster, s, stop)) for s in senders]
    for thread in threads:
        thread.start()
    faults: list[str] = []
    try:
        time.sleep(1.5)
        for round_ in range(3):  # bounded: three kills, each followed by the move back
            partition = PARTITIONS[round_ % len(PARTITIONS)]
            victim = _leader(cluster, partition)
            cluster.brokers[victim].kill()
            faults.append(f"SIGKILL leader {victim} of {partition}")
            time.sleep(SESSION_TIMEOUT_MS / 1000 + 0.5)
            cluster.start([victim])
            cluster.wait_alive({0, 1, 2}, timeout_s=30)
            # The preferred replica gets its leadership back once it is in the ISR again.
            cluster.wait_partition(TOPIC, partition, lambda s, v=victim: s["leader"] == v, timeout_s=40)
            faults.append(f"leadership back on {victim}")
            time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
    duplicated = lost = 0
    for sender in senders:
        leader = _leader(cluster, sender.partition)
        values = Counter(cluster.read_all(leader, TOPIC, sender.partition))
        duplicated += sum(1 for v in sender.acked if values[v] > 1)
        lost += sum(1 for v in sender.acked if values[v] == 0)
    acknowledged = sum(len(s.acked) for s in senders)
    print(
        f"\nplain client under faults: faults={faults} acknowledged={acknowledged} "
        f"unacknowledged={sum(len(s.unknown) for s in senders)} duplicated={duplicated} lost={lost} "
        f"answers={[dict(s.answers) for s in senders]}"
    )
    assert acknowledged > 100, "the senders barely wrote: the test proved nothing"
    assert duplicated == 0 and lost == 0
