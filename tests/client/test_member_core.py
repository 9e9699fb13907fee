"""The group member's state machine (tidelog._core.member) without a broker: join, heartbeat answers,
rebalance (what is committed before a partition is given up), commits that name only owned
partitions, seeks, streams and leaving; then the async shell's seek_to_timestamp and stream against
a real broker, which the sync one always had."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.broker_process import BrokerProcess
from tidelog import AsyncClient, Client, ClientStateError, Record, TopicPartition
from tidelog._core.member import GroupMember, MemberOptions

A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)


def _member(**changes: object) -> GroupMember:
    options = dict(
        group_id="g", topics=["a", "b"], topic_pattern=None, assignor="range", session_timeout_ms=9000,
        rebalance_timeout_ms=None, heartbeat_interval_ms=None, instance_id=None,
        auto_offset_reset="earliest", max_poll_records=500, max_poll_bytes=None, key_format=None,
        value_format=None, enable_auto_commit=True,
    )  # fmt: skip
    options.update(changes)
    return GroupMember(MemberOptions(**options))  # type: ignore[arg-type]


def _assignment(*tps: TopicPartition) -> list[dict[str, object]]:
    return [{"topic": tp.topic, "partition": tp.partition} for tp in tps]


def _record(tp: TopicPartition, offset: int) -> Record:
    return Record(tp.topic, tp.partition, offset, 0, "CreateTime", None, offset)


def test_options_are_checked_as_kafka_does() -> None:
    with pytest.raises(ValueError, match="either topics or topic_pattern"):
        _member(topic_pattern="a.*")
    with pytest.raises(ValueError, match="auto_offset_reset"):
        _member(auto_offset_reset="smallest")


def test_a_join_makes_a_member_whose_heartbeats_carry_the_applied_generation() -> None:
    member = _member()
    assert member.needs_join and member.heartbeat_call() is None
    member.joined({"member_id": "m1", "generation": 4, "assignment": _assignment(A0, A1)})
    assert not member.needs_join and member.heartbeat_interval_s == 3.0  # session / 3
    change = member.take_change()
    assert change is not None and change.assignment == (A0, A1) and change.pending == {}
    assert member.apply(change.assignment) == ([], [A0, A1])
    member.applied(change.generation)
    due = member.heartbeat_call()
    assert due is not None and due[0] == "m1" and due[1].json == {"generation": 4}
    with pytest.raises(ClientStateError):
        member.joined({"member_id": "m1"})  # an answer without its generation


def test_a_rebalance_commits_what_was_handed_out_of_revoked_partitions_first() -> None:
    member = _member()
    member.joined({"member_id": "m1", "generation": 1, "assignment": _assignment(A0, A1, B0)})
    member.apply(member.take_change().assignment)  # type: ignore[union-attr]
    member.mark_consumed([_record(A0, 9), _record(A1, 4), _record(A1, 2)])
    member.on_committed({A0: 10})
    member.heard("m1", {"generation": 2, "assignment": _assignment(A0, B0)})
    member.heard("stale-member", {"generation": 7, "assignment": []})  # ignored: another identity
    pending, generation = member.auto_commit_offsets()
    assert (pending, generation) == ({}, 2)  # A1 moved in generation 2: not committed as an owner
    change = member.take_change()
    assert change is not None and change.generation == 2 and change.pending == {A1: 5}
    assert member.apply(change.assignment) == ([A1], [])
    assert member.uncommitted() == {} and member.consumed == {A0: 10}


def test_without_auto_commit_nothing_is_committed_on_revocation() -> None:
    member = _member(enable_auto_commit=False)
    member.joined({"member_id": "m1", "generation": 1, "assignment": _assignment(A0)})
    member.apply(member.take_change().assignment)  # type: ignore[union-attr]
    member.mark_consumed([_record(A0, 3)])
    member.heard("m1", {"generation": 2, "assignment": []})
    assert member.take_change().pending == {}  # type: ignore[union-attr]


def test_an_expired_session_rejoins_and_loses_everything() -> None:
    member = _member()
    member.joined({"member_id": "m1", "generation": 1, "assignment": _assignment(A0)})
    member.apply(member.take_change().assignment)  # type: ignore[union-attr]
    member.unknown("someone-else")
    assert not member.needs_join
    member.unknown("m1")
    assert member.needs_join and member.heartbeat_call() is None
    assert member.apply(member.lose()) == ([A0], []) and member.member_id is None


def test_seeks_commits_streams_and_leaving() -> None:
    member = _member()
    with pytest.raises(ClientStateError, match="poll"):
        member.chosen(None)
    assert member.stream_params()["auto_offset_reset"] == "earliest"
    member.joined({"member_id": "m1", "generation": 3, "assignment": _assignment(A0)})
    member.apply(member.take_change().assignment)  # type: ignore[union-attr]
    with pytest.raises(ClientStateError, match="stream"):
        member.stream_params()
    member.sought(A0, "offset", 42)
    assert member.chosen(None) == {A0: 42}
    assert member.chosen({("a", 0): 7}) == {A0: 7}
    call = member.commit_call({A0: 7}, 3, "meta")
    assert call.json["generation"] == 3 and call.json["member_id"] == "m1"
    member.sought(A0, "timestamp", 1700)
    assert member.consumed == {} and member.seek_targets(None) == [A0]
    revoked, leave = member.leave()
    assert revoked == [A0] and leave is not None and leave.method == "DELETE"
    assert member.leave() == ([], None)


@pytest.mark.e2e
def test_the_async_consumer_seeks_to_a_timestamp_and_streams(
    broker: BrokerProcess, topic_name: str
) -> None:
    with Client(broker.url) as client:
        client.admin.create_topic(topic_name, partitions=1)
        client.produce(topic_name, [{"value": i, "timestamp": 1_000 + i} for i in range(10)], partition=0)

    async def main() -> None:
        async with AsyncClient(broker.url) as client:
            consumer = client.consumer(f"g-{topic_name}", [topic_name], auto_offset_reset="earliest")
            async with consumer:
                deadline = time.monotonic() + 30
                while not consumer.assignment() and time.monotonic() < deadline:
                    await consumer.poll(100)
                await consumer.seek_to_timestamp((topic_name, 0), 1_006)
                got: list[int] = []
                while len(got) < 4 and time.monotonic() < deadline:
                    got += [r.value for r in await consumer.poll(500)]
                assert got[:4] == [6, 7, 8, 9]
            streaming = client.consumer(f"s-{topic_name}", [topic_name], auto_offset_reset="earliest")
            stream = streaming.stream(max_records=10)
            assert sorted([r.value async for r in stream]) == list(range(10))  # type: ignore[type-var]

    asyncio.run(main())


# -- the partition reader's decisions (tidelog._core.reader) ---------------------------------------


def test_a_reader_resolves_its_start_and_where_to_go_out_of_range() -> None:
    from tidelog import OffsetOutOfRangeError
    from tidelog._core.reader import ReaderState
    from tidelog._types import PartitionOffsets

    offsets = PartitionOffsets.from_json(
        {"topic": "t", "partition": 0, "log_start_offset": 5, "high_watermark": 20, "log_end_offset": 20}
    )
    assert not ReaderState.needs_offsets(3) and ReaderState.needs_offsets(-2)
    assert ReaderState.resolve(3, None) == 3
    assert [ReaderState.resolve(o, offsets) for o in ("earliest", "latest", -4, -100)] == [5, 20, 16, 5]
    with pytest.raises(ValueError, match="earliest"):
        ReaderState.resolve("beginning", offsets)
    with pytest.raises(ValueError, match="on_out_of_range"):
        ReaderState("t", 0, max_records=1, max_bytes=None, key_format=None, value_format=None,
                    header_format=None, on_out_of_range="skip")  # fmt: skip
    state = ReaderState("t", 0, max_records=1, max_bytes=None, key_format=None, value_format=None,
                        header_format=None, on_out_of_range="latest")  # fmt: skip
    gone = OffsetOutOfRangeError("x", status=416, body={"log_start_offset": 5, "high_watermark": 20})
    assert state.out_of_range(gone) == 20
    state.on_out_of_range = "error"
    with pytest.raises(OffsetOutOfRangeError):
        state.out_of_range(gone)
