"""A plain HTTP client that sends every id with an ``Idempotency-Key`` of its own and retries every
answer but a 200 (and every transport error) with the same key, while partition leaders are
SIGKILLed, restarted and moved back to their preferred replica: no id is in the log twice, and no
acknowledged id is missing.

A retry whose first attempt was appended but not acknowledged (503 50305, a timeout, a 207 with a
partition's 50305) re-runs the key's idempotent batch (its broker-owned producer id, sequence 0),
which the partition's replicated producer state recognises on whichever broker leads it by then.
Before that, the key held only 200/207 answers: such a retry appended the id again.
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

from app.broker.partitioner import partition_for_key
from tests.cluster.harness import SESSION_TIMEOUT_MS, Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.slow]

TOPIC = "keyed"
PARTITIONS = (0, 1, 2)
RETRY_FOR_S = 60.0  # an id still unacknowledged after this long is given up (and reported)


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
    name: str
    partition: int | None  # None: the topic-level produce (split and forwarded), keyed records
    acked: list[str] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)
    retries: int = 0
    answers: Counter[str] = field(default_factory=Counter)


def _send(cluster: Cluster, sender: Sender, stop: threading.Event) -> None:
    """Each id with its own key, acks=all, to the brokers in turn, retried with that key until a 200."""
    n = 0
    attempt = 0
    with httpx.Client(timeout=5.0, follow_redirects=True) as http:
        while not stop.is_set():
            value = f"{sender.name}-{n}"
            n += 1
            if sender.partition is None:
                path = f"/v1/topics/{TOPIC}/records"
                body = {"records": [{"key": value, "value": value}]}
            else:
                path = f"/v1/topics/{TOPIC}/partitions/{sender.partition}/records"
                body = {"records": [{"value": value}]}
            headers = {"Idempotency-Key": f"key-{value}"}
            deadline = time.monotonic() + RETRY_FOR_S
            while True:
                attempt += 1
                broker = cluster.brokers[attempt % len(cluster.brokers)]
                try:
                    answer = http.post(
                        f"{broker.url}{path}", params={"acks": "all"}, json=body, headers=headers
                    )
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                else:
                    if answer.status_code == 200:
                        sender.acked.append(value)
                        break
                    try:
                        document = answer.json()
                    except ValueError:
                        document = {}
                    if answer.status_code == 207:
                        codes = {r.get("error_code") for r in document.get("results", [])}
                        outcome = "207:" + ",".join(str(c) for c in sorted(c for c in codes if c))
                    else:
                        outcome = str(document.get("error_code", answer.status_code))
                sender.answers[outcome] += 1
                if time.monotonic() > deadline:
                    sender.given_up.append(value)
                    break
                sender.retries += 1
                time.sleep(0.05)


def _leader(cluster: Cluster, partition: int) -> int:
    return int(cluster.wait_partition(TOPIC, partition, lambda s: s["leader"] is not None)["leader"])


def test_retries_with_the_same_idempotency_key_never_duplicate_across_leader_moves(
    cluster: Cluster,
) -> None:
    answer = cluster.create_topic(TOPIC, partitions=3, replication_factor=3, min_insync_replicas=2)
    assert answer.status_code in (201, 202), answer.text
    for partition in PARTITIONS:
        cluster.wait_partition(TOPIC, partition, lambda s: len(s["isr"]) == 3)
    senders = [Sender(f"p{p}", p) for p in PARTITIONS] + [Sender("topic", None)]
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
            cluster.wait_partition(TOPIC, partition, lambda s, v=victim: s["leader"] == v, timeout_s=40)
            faults.append(f"leadership back on {victim}")
            time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=RETRY_FOR_S + 15)
    assert not any(thread.is_alive() for thread in threads), "a sender did not finish"
    in_log: Counter[str] = Counter()
    for partition in PARTITIONS:
        in_log.update(cluster.read_all(_leader(cluster, partition), TOPIC, partition))
    sent = [v for s in senders for v in s.acked + s.given_up]
    duplicated = sum(1 for v in sent if in_log[v] > 1)
    lost = sum(1 for s in senders for v in s.acked if in_log[v] == 0)
    acknowledged = sum(len(s.acked) for s in senders)
    given_up = sum(len(s.given_up) for s in senders)
    retries = sum(s.retries for s in senders)
    print(
        f"\nIdempotency-Key retries under faults: faults={faults} acknowledged={acknowledged} "
        f"retries={retries} given_up={given_up} duplicated={duplicated} lost={lost} "
        f"answers={ {s.name: dict(s.answers) for s in senders} }"
    )
    assert acknowledged > 100, "the senders barely wrote: the test proved nothing"
    assert retries > 0, "no answer was retried: the faults did not reach the senders"
    topic_sender = senders[-1]
    assert {partition_for_key(v.encode(), 3) for v in topic_sender.acked} == set(PARTITIONS)
    assert duplicated == 0 and lost == 0
    assert given_up == 0, "an id was never acknowledged within the retry bound"
