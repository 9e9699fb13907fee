"""The client's binary batch format: producers and partition reads use it by default, read back exactly
what the JSON format does, and fall back to JSON against a broker that does not offer it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.broker_process import BrokerProcess
from tidelog import AsyncClient, Client, FetchResult, TopicPartition, UnknownTopicError

pytestmark = pytest.mark.e2e

BATCH = "application/vnd.tidelog.batch"


class OlderBrokerTransport(httpx.HTTPTransport):
    """Forwards to a real broker as one without the binary format would answer: 415 for a batch body,
    and a JSON answer (the ``Accept`` ignored) for a binary fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0
        self.seen_batches = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("content-type") == BATCH:
            self.refused += 1
            return httpx.Response(
                415,
                headers={"Content-Type": "application/problem+json"},
                json={
                    "type": "about:blank",
                    "title": "x",
                    "status": 415,
                    "detail": "no",
                    "error_code": 41501,
                },
            )
        if BATCH in request.headers.get("accept", ""):
            self.seen_batches += 1
            del request.headers["accept"]
        return super().handle_request(request)


def _create(client: Client, topic: str, partitions: int = 1) -> None:
    client.admin.create_topic(topic, partitions=partitions)


@pytest.mark.parametrize(
    ("key_format", "value_format"), [("string", "json"), ("binary", "binary"), ("json", "string")]
)
def test_records_produced_in_binary_read_back_as_the_json_format_gives_them(
    broker: BrokerProcess, topic_name: str, key_format: str, value_format: str
) -> None:
    samples = {
        "json": [{"a": [1, 2]}, "é", 3, None],
        "string": ["text", "é", "", None],
        "binary": [b"\x00\xff", b"", b"bytes", None],
    }
    keys = {
        "json": [1, None, {"k": 1}, "x"],
        "string": ["k", None, "é", "z"],
        "binary": [b"k", None, b"\x01", b""],
    }
    with Client(broker.url) as client:
        _create(client, topic_name)
        with client.producer(key_format=key_format, value_format=value_format, linger_ms=50) as producer:
            futures = [
                producer.send(topic_name, v, key=k, partition=0, headers=[("h", "v"), ("b", b"\xfe")])
                for k, v in zip(keys[key_format], samples[value_format], strict=True)
            ]
            metadata = [f.result(timeout=30) for f in futures]
        assert [m.offset for m in metadata] == [0, 1, 2, 3]
        binary = client.fetch(topic_name, 0, 0, max_wait_ms=0)
        with Client(broker.url, batch_format=False) as json_client:
            as_json = json_client.fetch(topic_name, 0, 0, max_wait_ms=0)
            json_binary_keys = json_client.fetch(topic_name, 0, 1, key_format="binary", value_format="binary")
        assert binary.records == as_json.records
        assert (
            (binary.next_offset, binary.high_watermark)
            == (as_json.next_offset, as_json.high_watermark)
            == (4, 4)
        )
        assert [r.timestamp for r in binary.records] == [m.timestamp for m in metadata]
        # Asked as binary: the stored bytes, in both formats; from offset 1 inside the one batch.
        asked = client.fetch(topic_name, 0, 1, key_format="binary", value_format="binary")
        assert asked.records == json_binary_keys.records
        assert [r.offset for r in asked.records] == [1, 2, 3]


def test_a_read_from_inside_a_batch_skips_earlier_records_and_honours_max_records(
    broker: BrokerProcess, topic_name: str
) -> None:
    with Client(broker.url) as client:
        _create(client, topic_name)
        with client.producer(linger_ms=100) as producer:
            for i in range(50):
                producer.send(topic_name, i, partition=0)
        result = client.fetch(topic_name, 0, 17, max_records=10)
        assert [r.value for r in result.records] == list(range(17, 27))
        assert result.next_offset == 27
        reader = client.reader(topic_name, 0, offset=45)
        assert [r.value for r in reader.poll(1000)] == [45, 46, 47, 48, 49]


def test_the_client_falls_back_to_json_against_a_broker_without_the_binary_format(
    broker: BrokerProcess, topic_name: str
) -> None:
    transport = OlderBrokerTransport()
    with Client(broker.url, transport=transport) as client:
        _create(client, topic_name)
        with client.producer() as producer:
            first = producer.send(topic_name, {"n": 1}, partition=0).result(timeout=30)
            second = producer.send(topic_name, {"n": 2}, partition=0).result(timeout=30)
        assert (first.offset, second.offset) == (0, 1)
        assert transport.refused == 1  # refused once, JSON from then on
        assert [r.value for r in client.fetch(topic_name, 0, 0).records] == [{"n": 1}, {"n": 2}]
        assert transport.seen_batches == 1  # the answer was JSON: read as such


def test_the_async_client_produces_and_reads_in_binary(broker: BrokerProcess, topic_name: str) -> None:
    async def run() -> list[object]:
        async with AsyncClient(broker.url) as client:
            await client.admin.create_topic(topic_name, partitions=1)
            async with client.producer() as producer:
                futures = [await producer.send(topic_name, {"i": i}, partition=0) for i in range(5)]
                await asyncio.gather(*futures)
            result = await client.fetch(topic_name, 0, 2)
            many = (await client.fetch_many({(topic_name, 0): 3}))[TopicPartition(topic_name, 0)]
            assert isinstance(many, FetchResult) and [r.offset for r in many.records] == [3, 4]
            return [r.value for r in result.records]

    assert asyncio.run(run()) == [{"i": i} for i in range(2, 5)]


@pytest.mark.parametrize("batch_format", [True, False])
def test_fetch_many_reads_every_partition_in_one_request(
    broker: BrokerProcess, topic_name: str, batch_format: bool
) -> None:
    with Client(broker.url, batch_format=batch_format) as client:
        _create(client, topic_name, partitions=4)
        with client.producer() as producer:
            for p in range(4):
                for i in range(p + 1):
                    producer.send(topic_name, {"p": p, "i": i}, partition=p)
        offsets = {(topic_name, p): 0 for p in range(4)}
        offsets[("no-such-topic", 0)] = 0
        results = client.fetch_many(offsets, max_wait_ms=0)
        for p in range(4):
            result = results[TopicPartition(topic_name, p)]
            assert isinstance(result, FetchResult)
            assert [r.value for r in result.records] == [{"p": p, "i": i} for i in range(p + 1)]
            assert result.next_offset == result.high_watermark == p + 1
        assert isinstance(results[TopicPartition("no-such-topic", 0)], UnknownTopicError)
        # From inside a batch, at most max_records.
        again = client.fetch_many({(topic_name, 3): 1}, max_records=2)[TopicPartition(topic_name, 3)]
        assert isinstance(again, FetchResult)
        assert [r.offset for r in again.records] == [1, 2] and again.next_offset == 3


def test_fetch_many_long_polls_until_a_partition_grows(broker: BrokerProcess, topic_name: str) -> None:
    import threading
    import time

    with Client(broker.url) as client:
        _create(client, topic_name, partitions=3)

        def later() -> None:
            time.sleep(0.5)
            client.produce(topic_name, [{"value": "late", "partition": 2}], acks="1")

        thread = threading.Thread(target=later)
        started = time.monotonic()
        thread.start()
        results = client.fetch_many({(topic_name, p): 0 for p in range(3)}, max_wait_ms=10_000)
        elapsed = time.monotonic() - started
        thread.join()
        assert 0.4 < elapsed < 8
        late = results[TopicPartition(topic_name, 2)]
        assert isinstance(late, FetchResult) and [r.value for r in late.records] == ["late"]
