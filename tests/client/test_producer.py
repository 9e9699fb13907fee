"""The client against a real broker process: produce/fetch round trips, the Producer's batching,
partitioning, idempotent retries through a transport that loses answers, and the AsyncProducer."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import httpx
import pytest

import tidelog
from tests.broker_process import BrokerProcess
from tidelog import AsyncClient, Client, RecordMetadata, partition_for_key

pytestmark = pytest.mark.e2e


class LosingTransport(httpx.HTTPTransport):
    """Sends every request to the broker, but loses the answer of every ``lose_every``-th produce.

    The broker has appended those batches; the client sees a dropped connection, exactly the case
    where a retry would write the records twice unless the broker recognises the retried batch.
    """

    def __init__(self, lose_every: int) -> None:
        super().__init__()
        self.lose_every = lose_every
        self.produces = 0
        self.lost = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/records"):
            with self._lock:
                self.produces += 1
                lose = self.produces % self.lose_every == 0
                if lose:
                    self.lost += 1
            if lose:
                response.read()
                response.close()
                raise httpx.RemoteProtocolError("connection lost after the request was sent", request=request)
        return response


def _all_values(client: Client, topic: str, partitions: int) -> dict[int, list[object]]:
    out: dict[int, list[object]] = {}
    for p in range(partitions):
        out[p] = [r.value for r in client.reader(topic, p, "earliest").read_to_end()]
    return out


def test_produce_and_fetch_round_trip_in_every_format(broker: BrokerProcess, topic_name: str) -> None:
    with Client(broker.url) as client:
        client.admin.create_topic(topic_name, 1)
        json_result = client.produce(
            topic_name,
            [
                {
                    "key": "k",
                    "value": {"n": 1, "s": "é"},
                    "headers": [("h", "v")],
                    "timestamp": 1_700_000_000_000,
                },
                {"key": None, "value": None},  # a tombstone
            ],
        )
        assert json_result.ok
        assert [m.offset for m in json_result.results if isinstance(m, RecordMetadata)] == [0, 1]
        client.produce(
            topic_name,
            [{"key": b"\x00\xff", "value": b"\x01\x02"}],
            key_format="binary",
            value_format="binary",
        )
        client.produce(
            topic_name,
            [{"key": "s", "value": "plain text", "headers": {"bin": b"\xfe"}}],
            value_format="string",
        )

        fetched = client.fetch(topic_name, 0, 0, max_records=10)
        assert fetched.next_offset == 4 and fetched.high_watermark == 4 and fetched.log_start_offset == 0
        first, tombstone, binary, text = fetched.records
        assert (first.key, first.value, first.timestamp) == ("k", {"n": 1, "s": "é"}, 1_700_000_000_000)
        assert first.headers == (("h", "v"),)
        assert tombstone.value is None and tombstone.key is None
        assert text.value == "plain text"
        # Binary values come back as base64 unless the reader asks for binary, then as bytes.
        raw = client.fetch(topic_name, 0, 2, max_records=1, key_format="binary", value_format="binary")
        assert (raw.records[0].key, raw.records[0].value) == (b"\x00\xff", b"\x01\x02")
        assert isinstance(binary.value, str)
        headers = client.fetch(topic_name, 0, 3, max_records=1, header_format="binary").records[0].headers
        assert headers == (("bin", b"\xfe"),)

        offsets = client.offsets(topic_name, 0)
        assert (offsets.log_start_offset, offsets.high_watermark) == (0, 4)
        assert client.offsets(topic_name, 0, timestamp=1_700_000_000_000).offset == 0


def test_errors_come_back_as_the_tree(broker: BrokerProcess, topic_name: str) -> None:
    with Client(broker.url) as client:
        with pytest.raises(tidelog.UnknownTopicError) as info:
            client.fetch("no-such-topic", 0, 0)
        assert info.value.http_status == 404 and info.value.error_code == 40401
        client.admin.create_topic(topic_name, 1)
        with pytest.raises(tidelog.TopicExistsError):
            client.admin.create_topic(topic_name, 1)
        with pytest.raises(tidelog.OffsetOutOfRangeError) as out_of_range:
            client.fetch(topic_name, 0, 50)
        assert out_of_range.value.high_watermark == 0
        with pytest.raises(tidelog.UnknownPartitionError):
            client.fetch(topic_name, 9, 0)
        with pytest.raises(tidelog.InvalidTopicNameError):
            client.admin.create_topic("bad name!", 1)
        with pytest.raises(TypeError):
            client.produce(topic_name, [{"value": b"bytes"}])  # json format cannot carry bytes


def test_connect_error_is_retried_then_raised() -> None:
    from tests.broker_process import free_port

    with (
        Client(f"http://127.0.0.1:{free_port()}", retries=2, backoff_ms=1) as client,
        pytest.raises(tidelog.ConnectError),
    ):
        client.cluster()


def test_producer_partitions_keys_like_kafka_and_the_broker(broker: BrokerProcess, topic_name: str) -> None:
    keys = [f"user-{i}" for i in range(40)]
    with Client(broker.url) as client:
        client.admin.create_topic(topic_name, 6)
        with client.producer(linger_ms=20) as producer:
            futures = [producer.send(topic_name, i, key=k) for i, k in enumerate(keys)]
            producer.flush()
            metas = [f.result(timeout=10) for f in futures]
        for key, meta in zip(keys, metas, strict=True):
            assert meta.partition == partition_for_key(key.encode(), 6)
        # The broker, partitioning the same keys itself, picks the same partitions.
        broker_side = client.produce(topic_name, [{"key": k, "value": 0} for k in keys])
        assert [m.partition for m in broker_side.results if isinstance(m, RecordMetadata)] == [
            m.partition for m in metas
        ]
        # Per partition, offsets follow the send order.
        by_partition: dict[int, list[int]] = {}
        for meta in metas:
            by_partition.setdefault(meta.partition, []).append(meta.offset)
        assert all(offs == sorted(offs) for offs in by_partition.values())


def test_producer_batches_and_delivers_every_record_once(broker: BrokerProcess, topic_name: str) -> None:
    delivered: list[RecordMetadata] = []
    lock = threading.Lock()

    def on_delivery(meta: RecordMetadata | None, error: Exception | None) -> None:
        assert error is None and meta is not None
        with lock:
            delivered.append(meta)

    with Client(broker.url) as client:
        client.admin.create_topic(topic_name, 3)
        with client.producer(linger_ms=50, batch_size=16 * 1024, max_batch_records=500) as producer:
            assert producer.idempotent and producer.producer_id is None
            for i in range(3000):
                producer.send(topic_name, {"i": i}, key=str(i % 17), callback=on_delivery)
            producer.flush()
            assert producer.producer_id is not None
        assert len(delivered) == 3000
        assert len({(m.partition, m.offset) for m in delivered}) == 3000
        values = _all_values(client, topic_name, 3)
        got = sorted(v["i"] for vs in values.values() for v in vs)  # type: ignore[index]
        assert got == list(range(3000))
        with pytest.raises(tidelog.ClientStateError):
            producer.send(topic_name, 1)


def test_idempotent_producer_retries_lost_answers_without_duplicates(
    broker: BrokerProcess, topic_name: str
) -> None:
    transport = LosingTransport(lose_every=3)
    with Client(broker.url, transport=transport) as client:
        client.admin.create_topic(topic_name, 2)
        with client.producer(linger_ms=5, max_batch_records=50, retry_backoff_ms=10) as producer:
            futures = [producer.send(topic_name, i, key=str(i % 5)) for i in range(1000)]
            producer.flush()
            metas = [f.result(timeout=30) for f in futures]
    assert transport.lost >= 3, "the transport must really have lost answers"
    with Client(broker.url) as reader:
        values = _all_values(reader, topic_name, 2)
    counts = Counter(v for vs in values.values() for v in vs)
    assert sorted(counts) == list(range(1000))
    assert max(counts.values()) == 1, "a retried batch was appended twice"
    # The futures carry the offsets the broker really used (the retry answered the original ones).
    for i, meta in enumerate(metas):
        assert values[meta.partition][meta.offset] == i
    # Order within a key (one partition) is the send order despite the retries.
    for vs in values.values():
        for key in range(5):
            of_key = [v for v in vs if v % 5 == key]  # type: ignore[operator]
            assert of_key == sorted(of_key)


def test_without_idempotence_the_same_losses_duplicate(broker: BrokerProcess, topic_name: str) -> None:
    # The control for the test above: the same lost answers, retried without producer id and
    # sequence, write records twice. If this stops duplicating, the test above proves nothing.
    transport = LosingTransport(lose_every=3)
    with Client(broker.url, transport=transport) as client:
        client.admin.create_topic(topic_name, 1)
        with client.producer(
            acks=1, idempotent=False, linger_ms=5, max_batch_records=20, retry_backoff_ms=10
        ) as p:
            for i in range(200):
                p.send(topic_name, i, partition=0)
            p.flush()
    with Client(broker.url) as reader:
        values = [r.value for r in reader.reader(topic_name, 0).read_to_end()]
    assert len(values) > 200 and sorted(set(values)) == list(range(200))  # type: ignore[type-var]


def test_producer_acks_and_explicit_partitions(broker: BrokerProcess, topic_name: str) -> None:
    with Client(broker.url) as client:
        client.admin.create_topic(topic_name, 2)
        for acks in ("0", "1", "all"):
            with client.producer(acks=acks, linger_ms=0) as producer:
                meta = producer.send(topic_name, acks, partition=1).result(timeout=10)
                assert meta.partition == 1
                assert (meta.offset == -1) if acks == "0" else meta.offset >= 0
        with client.producer() as producer:
            with pytest.raises(tidelog.UnknownPartitionError):
                producer.send(topic_name, 1, partition=2)
            with pytest.raises(tidelog.UnknownTopicError):
                producer.send("missing-topic", 1)
        with pytest.raises(ValueError):
            client.producer(acks=1, idempotent=True)
        values = [r.value for r in client.reader(topic_name, 1).read_to_end()]
        assert values == ["0", "1", "all"]


def test_producer_fails_futures_of_refused_batches(broker: BrokerProcess, topic_name: str) -> None:
    with Client(broker.url) as client:
        client.admin.create_topic(topic_name, 1, configs={"max.message.bytes": 1024})
        with client.producer(linger_ms=0) as producer:
            big = producer.send(topic_name, "x" * 5000)
            small = producer.send(topic_name, "ok")
            with pytest.raises(tidelog.RecordTooLargeError):
                big.result(timeout=10)
            assert small.result(timeout=10).offset == 0


def test_async_client_and_producer(broker: BrokerProcess, topic_name: str) -> None:
    async def main() -> list[RecordMetadata]:
        async with AsyncClient(broker.url) as client:
            await client.admin.create_topic(topic_name, 3)
            async with client.producer(linger_ms=10) as producer:
                futures = [await producer.send(topic_name, {"i": i}, key=f"k{i}") for i in range(500)]
                await producer.flush()
                metas = list(await asyncio.gather(*futures))
                one = await producer.send_and_wait(topic_name, "last", partition=0)
            fetched = await client.fetch(topic_name, 0, one.offset, max_records=1)
            assert fetched.records[0].value == "last"
            assert (await client.offsets(topic_name, 0)).high_watermark == one.offset + 1
            return metas

    metas = asyncio.run(main())
    assert len({(m.partition, m.offset) for m in metas}) == 500
    for i, meta in enumerate(metas):
        assert meta.partition == partition_for_key(f"k{i}".encode(), 3)


def test_producer_sees_partitions_added_after_it_cached_the_count(
    broker: BrokerProcess, topic_name: str
) -> None:
    with Client(broker.url) as client:
        client.admin.create_topic(topic_name, 1)
        with client.producer(linger_ms=0) as producer:
            assert producer.send(topic_name, "a").result(timeout=10).partition == 0
            client.admin.create_partitions(topic_name, 3)
            meta = producer.send(topic_name, "b", partition=2).result(timeout=10)
            assert (meta.partition, meta.offset) == (2, 0)
            done: list[object] = []
            future = producer.send(topic_name, "c", partition=1)
            future.add_done_callback(done.append)
            assert future.result(timeout=10).partition == 1 and future.done() and future.exception() is None
            assert done == [future]


def test_idempotency_key_replays_the_first_answer(broker: BrokerProcess, topic_name: str) -> None:
    with Client(broker.url) as client:
        client.admin.create_topic(topic_name, 1)
        first = client.produce(topic_name, ["a", "b"], idempotency_key="order-42")
        again = client.produce(topic_name, ["a", "b"], idempotency_key="order-42")
        assert first.results == again.results
        assert client.offsets(topic_name, 0).high_watermark == 2
        with pytest.raises(tidelog.IdempotencyKeyReusedError):
            client.produce(topic_name, ["other"], idempotency_key="order-42")
