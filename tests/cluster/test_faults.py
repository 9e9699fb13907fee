"""Fault injection in the manner of Jepsen: idempotent acks=all producers write unique ids while the
harness SIGKILLs a leader, SIGSTOPs a leader past its session timeout, and kills the controller,
restarting each; then every acknowledged record must be on every in-sync replica exactly once and in
order, and nothing a consumer read may have disappeared.

A network partition of the leader would need ``ip netns`` and root; brokers here share loopback, so
SIGSTOP (the leader stops answering and heartbeating, then comes back believing it still leads) is
the partition this test can make: for the deposed leader it is indistinguishable from one.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from tests.cluster.harness import SESSION_TIMEOUT_MS, Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

TOPIC = "jepsen"
#: Three partitions on three brokers: placement makes each broker the leader of one, so the
#: controller killed in the third fault always leads a partition too.
PARTITIONS = (0, 1, 2)


@dataclass
class Producer:
    name: str
    partition: int
    producer_id: int
    producer_epoch: int
    acked: list[int] = field(default_factory=list)
    ack_times: list[float] = field(default_factory=list)
    attempts: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)


def _run_producer(cluster: Cluster, producer: Producer, stop: threading.Event) -> None:
    """One record per request, sequence = its number; a failed request is retried unchanged
    (same sequence) on the next broker until acknowledged, so a retry is never a new record."""
    sequence = 0
    target = 0
    with httpx.Client(timeout=2.0, follow_redirects=True) as http:
        while not stop.is_set():
            broker = cluster.brokers[target % len(cluster.brokers)]
            body = {
                "records": [{"value": f"{producer.name}-{sequence}"}],
                "producer_id": producer.producer_id,
                "producer_epoch": producer.producer_epoch,
                "sequence": sequence,
            }
            producer.attempts += 1
            try:
                answer = http.post(
                    f"{broker.url}/v1/topics/{TOPIC}/partitions/{producer.partition}/records",
                    params={"acks": "all"}, json=body,
                )
            except httpx.HTTPError as exc:
                kind = type(exc).__name__
                producer.errors[kind] = producer.errors.get(kind, 0) + 1
                target += 1
                time.sleep(0.01)  # a dead broker refuses at once: do not spin
                continue
            if answer.status_code == 200:
                producer.acked.append(sequence)
                producer.ack_times.append(time.monotonic())
                sequence += 1
                continue
            code = str(answer.json().get("error_code", answer.status_code))
            producer.errors[code] = producer.errors.get(code, 0) + 1
            if code not in {"50301", "50302", "50303", "50304", "50305"}:  # only retriable refusals
                producer.unexpected.append(answer.text)
                return
            if answer.status_code == 307 or answer.headers.get("location"):
                producer.unexpected.append(f"a redirect after the append: {answer.text}")
                return
            if code in ("50304", "50305"):  # 50305: appended, not acknowledged; the retry is recognised
                target += 1
            time.sleep(0.05)


def _run_consumer(cluster: Cluster, seen: dict[tuple[int, int], str], stop: threading.Event) -> None:
    """Reads both partitions from rotating brokers; remembers every (partition, offset) → value."""
    positions = dict.fromkeys(PARTITIONS, 0)
    turn = 0
    with httpx.Client(timeout=2.0, follow_redirects=True) as http:
        while not stop.is_set():
            turn += 1
            partition = turn % len(PARTITIONS)
            broker = cluster.brokers[turn % len(cluster.brokers)]
            try:
                answer = http.get(
                    f"{broker.url}/v1/topics/{TOPIC}/partitions/{partition}/records",
                    params={"offset": positions[partition], "max_records": 500, "max_wait_ms": 100},
                )
            except httpx.HTTPError:
                continue
            if answer.status_code != 200:
                time.sleep(0.05)
                continue
            for record in answer.json()["records"]:
                seen[(partition, record["offset"])] = record["value"]
            positions[partition] = answer.json()["next_offset"]


def _own_log(cluster: Cluster, broker_id: int, partition: int, timeout_s: float = 20.0) -> list[str]:
    """Every record below the high watermark of broker ``broker_id``'s own replica."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return cluster.read_all(broker_id, TOPIC, partition)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _leader(cluster: Cluster, partition: int) -> int:
    state = cluster.wait_partition(TOPIC, partition, lambda s: s["leader"] is not None)
    return int(state["leader"])


def _healed(cluster: Cluster) -> None:
    cluster.wait_alive({0, 1, 2}, timeout_s=30)
    for partition in PARTITIONS:
        cluster.wait_partition(TOPIC, partition, lambda s: sorted(s["isr"]) == [0, 1, 2], timeout_s=30)


def test_no_acknowledged_record_lost_through_kills_pauses_and_controller_failover(cluster: Cluster) -> None:
    assert cluster.create_topic(TOPIC, partitions=len(PARTITIONS), replication_factor=3,
                                min_insync_replicas=2).status_code == 201
    producers = []
    for name, partition in (("a", 0), ("b", 0), ("c", 1), ("d", 2)):
        identity = cluster.http.post(f"{cluster.url(0)}/v1/producers").json()
        producers.append(Producer(name, partition, identity["producer_id"], identity["producer_epoch"]))
    stop = threading.Event()
    seen: dict[tuple[int, int], str] = {}
    threads = [threading.Thread(target=_run_producer, args=(cluster, p, stop)) for p in producers]
    threads.append(threading.Thread(target=_run_consumer, args=(cluster, seen, stop)))
    for thread in threads:
        thread.start()
    faults: list[tuple[str, float]] = []
    try:
        time.sleep(2)
        # 1. SIGKILL the leader of partition 0, restart it.
        victim = _leader(cluster, 0)
        cluster.brokers[victim].kill()
        faults.append((f"SIGKILL leader {victim}", time.monotonic()))
        time.sleep(SESSION_TIMEOUT_MS / 1000 + 0.5)
        cluster.start([victim])
        _healed(cluster)
        time.sleep(1)
        # 2. SIGSTOP the leader of partition 0 past its session timeout, then SIGCONT.
        victim = _leader(cluster, 0)
        os.kill(cluster.brokers[victim].pid, signal.SIGSTOP)
        faults.append((f"SIGSTOP leader {victim}", time.monotonic()))
        try:
            time.sleep(SESSION_TIMEOUT_MS / 1000 + 1.5)
        finally:
            os.kill(cluster.brokers[victim].pid, signal.SIGCONT)
        _healed(cluster)
        time.sleep(1)
        # 3. SIGKILL the controller, which leads a partition too: a new controller must take the
        # lease and then move that partition's leadership.
        controller = int(cluster.view()["controller_id"])
        assert controller in {_leader(cluster, p) for p in PARTITIONS}
        cluster.brokers[controller].kill()
        faults.append((f"SIGKILL controller {controller}", time.monotonic()))
        cluster.wait_alive({b for b in range(3) if b != controller} | set(), timeout_s=20)
        new_controller = cluster.wait_alive(set(), timeout_s=20)["controller_id"]
        deadline = time.monotonic() + 20
        while int(new_controller) == controller and time.monotonic() < deadline:
            time.sleep(0.2)
            new_controller = cluster.view()["controller_id"]
        assert int(new_controller) != controller, "no controller took over"
        cluster.start([controller])
        _healed(cluster)
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)

    acknowledged = sum(len(p.acked) for p in producers)
    # Followers learn the high watermark on their next fetch: give them a moment to agree.
    deadline = time.monotonic() + 15
    while True:
        logs = {(b, part): _own_log(cluster, b, part) for b in range(3) for part in PARTITIONS}
        agree = all(logs[(b, part)] == logs[(0, part)] for b in (1, 2) for part in PARTITIONS)
        if agree or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    lost = duplicated = out_of_order = 0
    for part in PARTITIONS:
        reference = logs[(0, part)]
        for b in (1, 2):
            assert logs[(b, part)] == reference, f"replicas {0} and {b} of partition {part} differ"
        for producer in (p for p in producers if p.partition == part):
            prefix = producer.name + "-"
            sequences = [int(v[len(prefix):]) for v in reference if v.startswith(prefix)]
            duplicated += len(sequences) - len(set(sequences))
            out_of_order += sum(1 for x, y in itertools.pairwise(sequences) if y <= x)
            lost += len(set(producer.acked) - set(sequences))
    vanished = [
        (k, v) for k, v in seen.items() if k[1] >= len(logs[(0, k[0])]) or logs[(0, k[0])][k[1]] != v
    ]
    found = sum(len(logs[(0, part)]) for part in PARTITIONS)

    outage = 0.0
    for producer in producers:
        times = producer.ack_times
        outage = max([outage, *(b - a for a, b in itertools.pairwise(times))])
    print(
        f"\nfault injection: faults={[f for f, _ in faults]} acknowledged={acknowledged} found={found} "
        f"lost={lost} duplicated={duplicated} out_of_order={out_of_order} consumer_reads={len(seen)} "
        f"vanished_reads={len(vanished)} longest_write_outage={outage:.2f}s "
        f"errors={[p.errors for p in producers]}"
    )
    assert not [p.unexpected for p in producers if p.unexpected]
    assert acknowledged > 50, "the producers barely wrote: the test proved nothing"
    assert lost == 0 and duplicated == 0 and out_of_order == 0
    assert not vanished, vanished[:5]
    assert outage < 2 * SESSION_TIMEOUT_MS / 1000 + 5, "writes did not resume after a leader failure"
