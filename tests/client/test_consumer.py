"""Consuming against a real broker process: the partition reader, group Consumers splitting a topic
and taking over from one that closes or dies, commits, seeks, and SSE streams that resume by cursor."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

import tidelog
from tests.broker_process import BrokerProcess
from tidelog import Client, Consumer, Record, TopicPartition

pytestmark = pytest.mark.e2e


def _fill(client: Client, topic: str, partitions: int, count: int) -> None:
    client.admin.create_topic(topic, partitions)
    with client.producer(linger_ms=5) as producer:
        for i in range(count):
            producer.send(topic, i, partition=i % partitions)
        producer.flush()


def _drain(consumers: list[Consumer], want: int, seen: Counter[int], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(seen) < want and time.monotonic() < deadline:
        for consumer in consumers:
            for record in consumer.poll(200):
                seen[record.value] += 1  # type: ignore[index]


def test_partition_reader_reads_to_end_follows_and_recovers_from_out_of_range(
    broker: BrokerProcess, topic_name: str
) -> None:
    with Client(broker.url) as client:
        _fill(client, topic_name, 1, 25)
        reader = client.reader(topic_name, 0, "earliest", max_records=10)
        assert [r.value for r in reader.read_to_end()] == list(range(25))
        assert reader.position == 25
        assert [r.value for r in client.reader(topic_name, 0, -3).read_to_end()] == [22, 23, 24]
        assert client.reader(topic_name, 0, "latest").position == 25

        # Following: a record produced later arrives in the long-poll.
        timer = threading.Timer(0.3, lambda: client.produce(topic_name, [{"value": "late"}], partition=0))
        timer.start()
        started = time.monotonic()
        got = reader.poll(5000)
        timer.join()
        assert [r.value for r in got] == ["late"] and time.monotonic() - started < 4.5

        # A position past the end resets to the configured end instead of failing.
        reader.seek(1000)
        assert reader.poll(0) == [] and reader.position == 0
        strict = client.reader(topic_name, 0, 1000, on_out_of_range="error")
        with pytest.raises(tidelog.OffsetOutOfRangeError):
            strict.poll(0)


def test_three_consumers_split_a_topic_and_take_over_when_one_closes(
    broker: BrokerProcess, topic_name: str
) -> None:
    group = f"g-{topic_name}"
    with Client(broker.url) as client:
        _fill(client, topic_name, 6, 300)
        consumers = [
            client.consumer(group, [topic_name], auto_offset_reset="earliest", session_timeout_ms=3000)
            for _ in range(3)
        ]
        seen: Counter[int] = Counter()
        try:
            # Join, and let every member see the final generation (joins rebalance the earlier ones).
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                for consumer in consumers:
                    consumer.heartbeat()
                    for record in consumer.poll(0):
                        seen[record.value] += 1  # type: ignore[index]
                owned = [set(c.assignment()) for c in consumers]
                if all(len(o) == 2 for o in owned) and len(set().union(*owned)) == 6:
                    break
            owned = [set(c.assignment()) for c in consumers]
            assert all(len(o) == 2 for o in owned), owned
            assert set().union(*owned) == {TopicPartition(topic_name, p) for p in range(6)}

            _drain(consumers, 300, seen)
            assert sorted(seen) == list(range(300))
            for consumer in consumers:
                consumer.commit()
            # (Records that moved in the eager rebalances while the members joined may have come twice:
            # at-least-once. From here on everything is committed.)
            before = Counter(seen)

            # One member leaves: the other two take its partitions over, from its committed offsets.
            leaving = consumers.pop()
            leaving.close()
            with client.producer(linger_ms=5) as producer:
                for i in range(300, 360):
                    producer.send(topic_name, i, partition=i % 6)
            _drain(consumers, 360, seen)
            assert sorted(seen) == list(range(360))
            assert set().union(*(set(c.assignment()) for c in consumers)) == {
                TopicPartition(topic_name, p) for p in range(6)
            }
            # Everything was committed before the take-over: no old record again, each new one once.
            assert all(seen[v] == before[v] for v in range(300))
            assert all(seen[v] == 1 for v in range(300, 360))
        finally:
            for consumer in consumers:
                consumer.close()
        state = client.admin.describe_group(group)
        assert state.members == () and state.state == "Empty"
        offsets = client.admin.list_group_offsets(group)
        assert sum(o.offset or 0 for o in offsets.offsets) == 360
        assert all(o.lag == 0 for o in offsets.offsets)


def test_rebalance_callbacks_and_rejoin_after_the_session_expired(
    broker: BrokerProcess, topic_name: str
) -> None:
    group = f"g-{topic_name}"
    assigned: list[list[TopicPartition]] = []
    revoked: list[list[TopicPartition]] = []
    with Client(broker.url) as client:
        _fill(client, topic_name, 2, 10)
        consumer = client.consumer(
            group,
            [topic_name],
            auto_offset_reset="earliest",
            session_timeout_ms=1000,
            on_assign=assigned.append,
            on_revoke=revoked.append,
        )
        with consumer:
            records = consumer.poll(2000)
            first_member = consumer.member_id
            assert assigned == [[TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)]]
            while len(records) < 10:
                records += consumer.poll(500)
            # Silence the heartbeats past the session timeout: the broker drops the member.
            consumer._stop.set()  # simulating a process that stalls
            assert consumer._heartbeat_thread is not None
            consumer._heartbeat_thread.join()
            time.sleep(2.5)
            deadline = time.monotonic() + 10
            while consumer.member_id == first_member and time.monotonic() < deadline:
                consumer.poll(200)
            assert consumer.member_id not in (None, first_member)
            # The lost partitions were revoked and assigned again.
            assert revoked and set(revoked[0]) == {
                TopicPartition(topic_name, 0),
                TopicPartition(topic_name, 1),
            }
            assert len(assigned) >= 2


def test_commit_sync_async_seek_and_committed(broker: BrokerProcess, topic_name: str) -> None:
    group = f"g-{topic_name}"
    tp = TopicPartition(topic_name, 0)
    with Client(broker.url) as client:
        _fill(client, topic_name, 1, 20)
        with client.consumer(
            group, [topic_name], auto_offset_reset="earliest", enable_auto_commit=False
        ) as c:
            records: list[Record] = []
            while len(records) < 20:
                records += c.poll(500)
            assert [r.value for r in records] == list(range(20))
            assert c.position(tp) == 20
            c.commit({tp: 5})
            assert c.committed()[tp] == 5
            future = c.commit({tp: 7}, asynchronous=True)
            assert future is not None
            future.result(timeout=10)
            assert c.committed()[tp] == 7
            c.seek(tp, 3)
            again: list[Record] = []
            while len(again) < 17:
                again += c.poll(500)
            assert [r.value for r in again] == list(range(3, 20))
            c.seek_to_beginning()
            assert c.poll(2000)[0].offset == 0
        # Not auto-committing: closing left the explicit commit alone.
        assert client.admin.list_group_offsets(group).offsets[0].offset == 7
        # A new member starts from the committed offset.
        with client.consumer(group, [topic_name], auto_offset_reset="earliest") as c2:
            assert c2.poll(2000)[0].offset == 7


def test_auto_commit_is_at_least_once(broker: BrokerProcess, topic_name: str) -> None:
    group = f"g-{topic_name}"
    with Client(broker.url) as client:
        _fill(client, topic_name, 1, 10)
        consumer = client.consumer(group, [topic_name], auto_offset_reset="earliest", max_poll_records=4)
        first = consumer.poll(2000)
        assert [r.value for r in first] == [0, 1, 2, 3]
        # Nothing is committed until the application comes back for more.
        assert client.admin.list_group_offsets(group).offsets == ()
        second = consumer.poll(2000)
        assert second[0].value == 4
        assert client.admin.list_group_offsets(group).offsets[0].offset == 4
        consumer.close()  # commits what the last poll returned
        assert client.admin.list_group_offsets(group).offsets[0].offset == 4 + len(second)


def test_admin_groups_reset_and_delete(broker: BrokerProcess, topic_name: str) -> None:
    group = f"g-{topic_name}"
    with Client(broker.url) as client:
        _fill(client, topic_name, 2, 10)
        client.admin.commit_offsets(group, {(topic_name, 0): 2, (topic_name, 1): 3})
        listed = {g["group_id"] for g in client.admin.list_groups()}
        assert group in listed
        plan = client.admin.reset_offsets(group, [topic_name], "earliest", dry_run=True)
        assert {(o.partition, o.offset) for o in plan.offsets} == {(0, 0), (1, 0)}
        assert {o.offset for o in client.admin.list_group_offsets(group).offsets} == {2, 3}
        client.admin.reset_offsets(group, [topic_name], "shift_by", 1)
        assert {o.offset for o in client.admin.list_group_offsets(group).offsets} == {3, 4}
        with client.consumer(group, [topic_name]) as member:
            member.poll(0)
            with pytest.raises(tidelog.GroupNotEmptyError):
                client.admin.delete_group(group)
        client.admin.delete_group(group)
        with pytest.raises(tidelog.UnknownGroupError):
            client.admin.describe_group(group)


def test_topic_stream_resumes_by_cursor_without_gap_or_duplicate(
    broker: BrokerProcess, topic_name: str
) -> None:
    with Client(broker.url) as client:
        _fill(client, topic_name, 2, 20)
        first = client.stream(topic_name, start="earliest", max_records=12)
        got = list(first)
        first.close()
        assert len(got) == 12 and first.cursor
        with client.producer() as producer:
            for i in range(20, 30):
                producer.send(topic_name, i, partition=i % 2)
        resumed = client.stream(topic_name, cursor=first.cursor, max_records=18)
        rest = list(resumed)
        resumed.close()
        values = [r.value for r in got + rest]
        assert sorted(values) == list(range(30))  # type: ignore[type-var]
        # Per partition, offsets are consecutive across the two connections.
        for p in range(2):
            offsets = [r.offset for r in got + rest if r.partition == p]
            assert offsets == list(range(15))


def test_topic_stream_reconnects_by_itself_across_a_broker_restart(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    process = BrokerProcess(tmp_path_factory.mktemp("sse-restart") / "data").start()
    try:
        with Client(process.url, retries=10) as client:
            _fill(client, "events", 1, 5)
            stream = client.stream("events", start="earliest", read_timeout=5.0, max_records=10)
            received: list[Record] = []
            done = threading.Event()

            def consume() -> None:
                for record in stream:
                    received.append(record)
                done.set()

            thread = threading.Thread(target=consume, daemon=True)
            thread.start()
            deadline = time.monotonic() + 10
            while len(received) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            process.restart()
            client.produce("events", [{"value": i} for i in range(5, 10)], partition=0)
            assert done.wait(30), f"stream stopped at {len(received)} records"
            stream.close()
            assert [r.value for r in received] == list(range(10))
            assert stream.connections >= 2
    finally:
        process.stop()


def test_group_stream_is_a_member_while_connected(broker: BrokerProcess, topic_name: str) -> None:
    group = f"g-{topic_name}"
    with Client(broker.url) as client:
        _fill(client, topic_name, 2, 8)
        stream = client.group_stream(
            group, [topic_name], max_records=8, extra_params={"auto_offset_reset": "earliest"}
        )
        values = sorted(r.value for r in stream)  # type: ignore[type-var]
        assert values == list(range(8))
        assert stream.member_id is not None and stream.generation is not None
        assert set(stream.assignment) == {TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)}
        stream.close()


def test_iterating_a_consumer_yields_records_until_closed(broker: BrokerProcess, topic_name: str) -> None:
    group = f"g-{topic_name}"
    with Client(broker.url) as client:
        _fill(client, topic_name, 2, 6)
        consumer = client.consumer(group, [topic_name], auto_offset_reset="earliest", assignor="roundrobin")
        values = []
        for record in consumer:
            values.append(record.value)
            if len(values) == 5:
                break  # while handling the fifth record: it must not be committed
        consumer.close()
        with pytest.raises(tidelog.ClientStateError):
            consumer.poll(0)
        assert sum(o.offset or 0 for o in client.admin.list_group_offsets(group).offsets) == 4
        with client.consumer(group, [topic_name], auto_offset_reset="earliest") as again:
            for record in again:
                values.append(record.value)
                if len(values) == 7:
                    again.close()
        # The fifth record came again; nothing was skipped.
        assert sorted(values) == sorted([*range(6), values[4]])  # type: ignore[type-var]


def test_async_consumers_split_a_topic_and_take_over(broker: BrokerProcess, topic_name: str) -> None:
    import asyncio

    from tidelog import AsyncClient

    group = f"g-{topic_name}"
    with Client(broker.url) as client:
        _fill(client, topic_name, 4, 40)

    async def main() -> tuple[Counter[int], list[list[TopicPartition]]]:
        seen: Counter[int] = Counter()
        assigned: list[list[TopicPartition]] = []

        async def on_assign(partitions: list[TopicPartition]) -> None:
            assigned.append(partitions)

        async with AsyncClient(broker.url) as client:
            a = client.consumer(group, [topic_name], auto_offset_reset="earliest", on_assign=on_assign)
            b = client.consumer(group, [topic_name], auto_offset_reset="earliest", session_timeout_ms=3000)
            deadline = asyncio.get_running_loop().time() + 20
            while asyncio.get_running_loop().time() < deadline:
                for consumer in (a, b):
                    await consumer.heartbeat()
                    for record in await consumer.poll(200):
                        seen[record.value] += 1  # type: ignore[index]
                if len(seen) == 40 and len(a.assignment()) == 2 and len(b.assignment()) == 2:
                    break
            assert len(a.assignment()) == 2 and len(b.assignment()) == 2
            assert sorted(seen) == list(range(40))
            await a.commit()
            await b.commit()
            await a.close()
            async with client.producer() as producer:
                for i in range(40, 48):
                    await producer.send(topic_name, i, partition=i % 4)
            async for record in b:
                seen[record.value] += 1  # type: ignore[index]
                if len(seen) == 48:
                    break
            assert len(b.assignment()) == 4
            await b.close()
        return seen, assigned

    seen, assigned = asyncio.run(main())
    assert sorted(seen) == list(range(48))
    assert all(seen[v] == 1 for v in range(40, 48))
    assert assigned and assigned[0]


def test_async_reader_and_streams(broker: BrokerProcess, topic_name: str) -> None:
    import asyncio

    from tidelog import AsyncClient

    group = f"g-{topic_name}"
    with Client(broker.url) as client:
        _fill(client, topic_name, 2, 10)

    async def main() -> None:
        async with AsyncClient(broker.url) as client:
            reader = client.reader(topic_name, 1, "earliest", max_records=2)
            assert [r.value async for r in reader.read_to_end()] == [1, 3, 5, 7, 9]
            assert await reader.position() == 5
            tail = client.reader(topic_name, 0, -2)
            assert [r.value for r in await tail.poll(0)] == [6, 8]

            stream = client.stream(topic_name, start="earliest", max_records=6)
            first = [r async for r in stream]
            resumed = client.stream(topic_name, cursor=stream.cursor, max_records=4)
            rest = [r async for r in resumed]
            assert sorted(r.value for r in first + rest) == list(range(10))  # type: ignore[type-var]

            members = client.group_stream(
                group, [topic_name], max_records=10, extra_params={"auto_offset_reset": "earliest"}
            )
            assert sorted([r.value async for r in members]) == list(range(10))  # type: ignore[type-var]
            assert members.member_id is not None and len(members.assignment) == 2
            with pytest.raises(TypeError):
                list(members)  # an AsyncClient's stream is iterated with async for

    asyncio.run(main())


def test_consumer_stream_is_the_same_membership_over_sse(broker: BrokerProcess, topic_name: str) -> None:
    group = f"g-{topic_name}"
    with Client(broker.url) as client:
        _fill(client, topic_name, 2, 6)
        consumer = client.consumer(group, [topic_name], auto_offset_reset="earliest", session_timeout_ms=6000)
        with consumer.stream(max_records=6) as stream:
            assert sorted([r.value for r in stream]) == list(range(6))  # type: ignore[type-var]
            assert stream.member_id is not None and len(stream.assignment) == 2
        consumer.poll(0)
        with pytest.raises(tidelog.ClientStateError):
            consumer.stream()
        consumer.close()
