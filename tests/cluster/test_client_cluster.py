"""The ``tidelog`` client against three real brokers: leaders cached from topic metadata, 307s
followed, a leader SIGKILLed under a running idempotent Producer, and reads through a non-leader.

Every client here is pointed at one broker that does not lead every partition (the "bootstrap"),
so every request for a partition led elsewhere either goes straight to its leader (cache) or is
redirected there; a counting transport tells which.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter

import httpx
import pytest
from click.testing import CliRunner

from tests.cluster.harness import SESSION_TIMEOUT_MS, Cluster
from tidelog import AsyncClient, Client, DeliveryFuture, RecordMetadata
from tidelog.cli import main

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

PARTITIONS = 3


class CountingTransport(httpx.HTTPTransport):
    """Counts produce requests per broker port and the 307s among them."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.produce_by_port: Counter[int] = Counter()
        self.redirects = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/records"):
            with self.lock:
                self.produce_by_port[request.url.port or 0] += 1
                self.redirects += response.status_code == 307
        return response


class AsyncCountingTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.produce_by_port: Counter[int] = Counter()
        self.redirects = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/records"):
            self.produce_by_port[request.url.port or 0] += 1
            self.redirects += response.status_code == 307
        return response


def _replicated_topic(cluster: Cluster, name: str) -> dict[int, int]:
    """Create a 3-partition, replication factor 3 topic; return each partition's leader once every
    replica is in sync."""
    created = cluster.create_topic(name, partitions=PARTITIONS, replication_factor=3, min_insync_replicas=2)
    assert created.status_code == 201, created.text
    leaders = {
        p: int(cluster.wait_partition(
            name, p, lambda s: s["leader"] is not None and sorted(s["isr"]) == [0, 1, 2]
        )["leader"])
        for p in range(PARTITIONS)
    }
    # The catalog names the leaders at once; each broker takes its part up a moment later. Wait
    # until every replica serves a read itself, so that the routing counted below is the client's.
    deadline = time.monotonic() + 20
    for partition in range(PARTITIONS):
        for broker in cluster.brokers:
            while True:
                answer = cluster.http.get(
                    f"{cluster.url(broker)}/v1/topics/{name}/partitions/{partition}/records",
                    params={"offset": 0, "max_wait_ms": 0, "replica": "any"},
                )
                if answer.status_code == 200:
                    break
                assert time.monotonic() < deadline, answer.text
                time.sleep(0.05)
    return leaders


def _read_back(url: str, topic: str) -> dict[int, list[str]]:
    """Every record of every partition, read with the client's PartitionReader through ``url``."""
    values: dict[int, list[str]] = {}
    with Client(url, timeout=10.0) as client:
        for partition in range(PARTITIONS):
            reader = client.reader(topic, partition, "earliest")
            values[partition] = [str(r.value) for r in reader.read_to_end(timeout_ms=200)]
    return values


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_producer_through_a_non_leader_goes_to_each_leader_and_lands_every_record_once(
    cluster: Cluster,
) -> None:
    topic = "orders"
    leaders = _replicated_topic(cluster, topic)
    bootstrap = 0
    elsewhere = [p for p, leader in leaders.items() if leader != bootstrap]
    assert elsewhere, f"broker {bootstrap} leads every partition: {leaders}"

    # The plain Client: a produce to a partition led elsewhere is redirected, followed with its
    # body, and the leader remembered, so the next one goes straight there.
    transport = CountingTransport()
    with Client(cluster.url(bootstrap), transport=transport, timeout=10.0) as client:
        first = client.produce(topic, ["plain-0"], partition=elsewhere[0]).results[0]
        assert isinstance(first, RecordMetadata) and first.offset == 0, first
        # At least one: a broker may still be taking up the leadership the catalog gave it a moment
        # ago, and send the request round once more.
        redirects = transport.redirects
        assert redirects >= 1
        assert client.leaders.leader_url(topic, elsewhere[0]) == cluster.url(leaders[elsewhere[0]])
        second = client.produce(topic, ["plain-1"], partition=elsewhere[0]).results[0]
        assert isinstance(second, RecordMetadata) and second.offset == 1
        assert transport.redirects == redirects, "the second produce should have gone straight to the leader"
        # A fetch through the bootstrap broker reads what the leader acknowledged.
        fetched = client.fetch(topic, elsewhere[0], 0, max_wait_ms=0)
        assert [r.value for r in fetched.records] == ["plain-0", "plain-1"]

    # The Producer loads the leaders from topic metadata before its first batch: no redirect at all.
    transport = CountingTransport()
    sent = [f"r-{i}" for i in range(600)]
    with Client(cluster.url(bootstrap), transport=transport, timeout=10.0) as client:
        with client.producer(linger_ms=5, max_batch_records=50) as producer:
            futures = [producer.send(topic, value, partition=i % PARTITIONS) for i, value in enumerate(sent)]
            producer.flush(timeout=30)
        metas = [f.result(timeout=0) for f in futures]
    assert transport.redirects == 0
    assert sum(transport.produce_by_port.values()) >= PARTITIONS
    assert set(transport.produce_by_port) == {_port(cluster.url(leaders[p])) for p in range(PARTITIONS)}
    assert {m.partition for m in metas} == set(range(PARTITIONS))

    # The AsyncProducer does the same.
    async def produce_async() -> tuple[list[RecordMetadata], AsyncCountingTransport]:
        counting = AsyncCountingTransport()
        async with (
            AsyncClient(cluster.url(bootstrap), transport=counting, timeout=10.0) as aclient,
            aclient.producer(linger_ms=5) as aproducer,
        ):
            pending = [await aproducer.send(topic, f"a-{i}", partition=i % PARTITIONS) for i in range(60)]
            return list(await asyncio.gather(*pending)), counting

    async_metas, counting = asyncio.run(produce_async())
    assert len(async_metas) == 60 and counting.redirects == 0

    expected = Counter(["plain-0", "plain-1", *sent, *(f"a-{i}" for i in range(60))])
    found = _read_back(cluster.url(bootstrap), topic)
    assert Counter(v for values in found.values() for v in values) == expected
    for partition in range(PARTITIONS):
        # Every replica holds the same records as the one read through the bootstrap broker.
        assert cluster.read_all(leaders[partition], topic, partition) == found[partition]

    # A group consumer through the bootstrap broker reads everything too.
    with Client(cluster.url(bootstrap), timeout=10.0) as client:
        consumer = client.consumer("billing", [topic], auto_offset_reset="earliest")
        seen: Counter[str] = Counter()
        deadline = time.monotonic() + 20
        while sum(seen.values()) < sum(expected.values()) and time.monotonic() < deadline:
            seen.update(str(r.value) for r in consumer.poll(500))
        consumer.close()
    assert seen == expected


@pytest.mark.parametrize("victim_is_bootstrap", [False, True], ids=["leader-elsewhere", "clients-own-broker"])
def test_producer_keeps_going_without_duplicates_when_a_leader_is_killed(
    cluster: Cluster, victim_is_bootstrap: bool
) -> None:
    """SIGKILL the leader of a partition under a running producer: either another broker, or the
    very broker the client was pointed at (then metadata comes from the other brokers it learned
    from ``/v1/cluster``, as Kafka clients fall back to other bootstrap servers)."""
    topic = "failover"
    leaders = _replicated_topic(cluster, topic)
    bootstrap = 0
    victim_partition = next(
        p for p, leader in leaders.items() if (leader == bootstrap) == victim_is_bootstrap
    )
    victim = leaders[victim_partition]
    survivor = next(b for b in cluster.brokers if b != victim)

    acked_at: dict[int, list[float]] = {p: [] for p in range(PARTITIONS)}
    lock = threading.Lock()

    def on_delivery(meta: RecordMetadata | None, error: Exception | None) -> None:
        if meta is not None:
            with lock:
                acked_at[meta.partition].append(time.monotonic())

    # A reader of the victim's partition follows it through the failover, through the same broker.
    # Its client retries long enough to outlast an election (session timeout plus a pass).
    read_live: list[str] = []
    reader_errors: list[BaseException] = []
    stop_reading = threading.Event()

    def follow_victim_partition() -> None:
        try:
            with Client(cluster.url(bootstrap), timeout=3.0, retries=10) as reader_client:
                reader = reader_client.reader(topic, victim_partition, "earliest")
                while not stop_reading.is_set():
                    read_live.extend(str(r.value) for r in reader.poll(200))
                read_live.extend(str(r.value) for r in reader.read_to_end(timeout_ms=200))
        except BaseException as exc:  # reported by the test below
            reader_errors.append(exc)

    reading = threading.Thread(target=follow_victim_partition, name="reader", daemon=True)
    reading.start()

    sent: list[str] = []
    futures: list[DeliveryFuture] = []
    with Client(cluster.url(bootstrap), timeout=3.0) as client:
        producer = client.producer(linger_ms=2, delivery_timeout_ms=40_000, retry_backoff_ms=100)

        def send(count: int) -> None:
            for _ in range(count):
                value = f"f-{len(sent)}"
                futures.append(producer.send(topic, value, partition=len(sent) % PARTITIONS,
                                             callback=on_delivery))
                sent.append(value)

        send(300)
        producer.flush(timeout=30)
        assert client.leaders.leader_url(topic, victim_partition) == cluster.url(victim)

        cluster.brokers[victim].kill()
        killed_at = time.monotonic()
        # Keep producing through the failover, until the victim's partition has been acknowledged
        # again for a while (bounded: session timeout plus election, well within 30 s).
        deadline = killed_at + 30
        while time.monotonic() < deadline:
            send(15)
            time.sleep(0.05)
            with lock:
                after = [t for t in acked_at[victim_partition] if t > killed_at]
            if len(after) >= 50:
                break
        producer.flush(timeout=45)
        producer.close()
        new_leader_url = client.leaders.leader_url(topic, victim_partition)
    stop_reading.set()
    reading.join(timeout=60)
    assert not reading.is_alive() and not reader_errors, reader_errors

    errors = [f.exception(timeout=0) for f in futures]
    assert not any(errors), [e for e in errors if e][:3]
    with lock:
        resumed = [t for t in acked_at[victim_partition] if t > killed_at]
        before = [t for t in acked_at[victim_partition] if t <= killed_at]
    assert resumed, "no record of the victim's partition acknowledged after the kill"
    outage = resumed[0] - max(before)
    state = cluster.partition(topic, victim_partition)
    assert state["leader"] not in (None, victim)
    assert new_leader_url == cluster.url(int(state["leader"]))

    found = _read_back(cluster.url(survivor), topic)
    counts = Counter(v for values in found.values() for v in values)
    duplicated = sorted(v for v, n in counts.items() if n > 1)
    lost = sorted(set(sent) - set(counts))
    print(
        f"\nclient failover: sent={len(sent)} acknowledged={len(futures)} found={sum(counts.values())} "
        f"lost={len(lost)} duplicated={len(duplicated)} read_live={len(read_live)} victim=broker {victim} "
        f"write_outage={outage:.2f}s (session timeout {SESSION_TIMEOUT_MS / 1000:.1f}s)"
    )
    assert not lost and not duplicated and set(counts) == set(sent)
    for partition, values in found.items():
        # In order on each partition: the producer sends one batch per partition at a time.
        numbers = [int(v.split("-")[1]) for v in values]
        assert numbers == sorted(numbers), partition
    # What the reader saw while the leader died is the partition, once each and in order.
    assert read_live == found[victim_partition]
    assert outage < 4 * SESSION_TIMEOUT_MS / 1000

    # `tidelog cluster` shows the dead broker fenced, the controller, and the partitions that lost
    # a replica as under-replicated.
    shown = CliRunner().invoke(main, ["cluster", "--url", cluster.url(survivor)], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    victim_row = next(line for line in lines if cluster.url(victim) in line)
    assert "fenced" in victim_row
    assert sum("alive" in line for line in lines) == 2
    assert "controller" in shown.stdout and f"Under-replicated partitions: {PARTITIONS}" in shown.stdout
    as_json = CliRunner().invoke(main, ["cluster", "info", "-o", "json", "--url", cluster.url(survivor)])
    view = json.loads(as_json.stdout)
    assert {(u["topic"], u["partition"]) for u in view["under_replicated_partitions"]} == {
        (topic, p) for p in range(PARTITIONS)
    }
    assert {b["broker_id"]: b["state"] for b in view["brokers"]}[victim] == "fenced"
    assert f"Controller: {view['controller_id']}" in shown.stdout
