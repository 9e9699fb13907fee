"""The pure parts of connect: assignment, the acknowledged prefix, retries, providers, hiding, SMTs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.connect.assignment import TaskSlot, assign
from tidelog.connect.api import SinkRecord, SourceRecord
from tidelog.connect.config import HIDDEN, ConfigValidationError, hide, resolve_providers
from tidelog.connect.submitted import SubmittedRecords
from tidelog.connect.tolerance import RetrySchedule, Stage, ToleranceConfig, context_headers
from tidelog.connect.transforms import build_chain

# --- assignment


def test_free_tasks_go_to_the_least_loaded_worker_and_dead_workers_lose_theirs() -> None:
    tasks = [TaskSlot(("a", i), "w1" if i < 2 else None, True) for i in range(4)]
    changes = assign(tasks, {"w1": {("a", 0), ("a", 1)}, "w2": set()})
    assert changes == {("a", 2): "w2", ("a", 3): "w2"}
    changes = assign([TaskSlot(("a", 0), "dead", True)], {"w2": set()})
    assert changes == {("a", 0): "w2"}


def test_a_task_still_running_elsewhere_waits_and_stopped_connectors_run_nowhere() -> None:
    changes = assign([TaskSlot(("a", 0), None, True)], {"w1": set(), "w2": {("a", 0)}, "w3": set()})
    assert changes == {}  # w1 is the least loaded, but w2 has not reported it stopped yet
    assert assign([TaskSlot(("a", 0), "w1", False)], {"w1": {("a", 0)}}) == {("a", 0): None}


@given(st.integers(1, 12), st.integers(1, 5), st.data())
def test_repeated_rounds_converge_to_a_balance_without_double_running(
    tasks: int, workers: int, data: st.DataObject
) -> None:
    names = [f"w{i}" for i in range(workers)]
    owner: dict[tuple[str, int], str | None] = {
        ("c", i): data.draw(st.sampled_from([None, *names])) for i in range(tasks)
    }
    for _ in range(4 * tasks + 4):
        running = {w: {k for k, o in owner.items() if o == w} for w in names}
        changes = assign([TaskSlot(k, o, True) for k, o in owner.items()], running)
        for key, new in changes.items():
            if new is not None:
                others = [w for w, keys in running.items() if key in keys and w != new]
                assert others == []  # never handed over while another worker still runs it
            owner[key] = new
    loads = [sum(1 for o in owner.values() if o == w) for w in names]
    assert all(o is not None for o in owner.values())
    assert max(loads) - min(loads) <= 1


# --- SubmittedRecords (KAFKA-12226)


def test_only_the_contiguous_acknowledged_prefix_is_committable() -> None:
    submitted = SubmittedRecords()
    records = [submitted.submit({"f": "a"}, {"pos": i}) for i in range(4)]
    other = submitted.submit({"f": "b"}, {"pos": 9})
    records[1].ack()
    records[2].ack()
    assert submitted.committable() == {}  # record 0 is not acknowledged: nothing moves
    records[0].ack()
    other.ack()
    committable = submitted.committable()
    assert committable['{"f":"a"}'] == ({"f": "a"}, {"pos": 2})
    assert committable['{"f":"b"}'] == ({"f": "b"}, {"pos": 9})
    assert submitted.outstanding == 1
    assert submitted.committable() == {}


# --- retries


def test_retry_backoff_doubles_from_300_ms_capped_and_ends_at_the_timeout() -> None:
    schedule = RetrySchedule(ToleranceConfig(retry_timeout_ms=5000, retry_delay_max_ms=1000), 0)
    assert [schedule.next_delay_ms(0) for _ in range(4)] == [300, 600, 1000, 1000]
    assert schedule.next_delay_ms(4900) == 100
    assert schedule.next_delay_ms(5000) is None
    assert RetrySchedule(ToleranceConfig(retry_timeout_ms=0), 0).next_delay_ms(0) is None
    forever = RetrySchedule(ToleranceConfig(retry_timeout_ms=-1, retry_delay_max_ms=500), 0)
    assert forever.next_delay_ms(10**9) == 300


def test_context_headers_are_kafkas() -> None:
    headers = context_headers(
        stage=Stage.TASK_PUT,
        operation_class="HttpSinkTask",
        error=ValueError("bad"),
        connector="c",
        task=2,
        topic="t",
        partition=1,
        offset=7,
    )
    assert headers["__connect.errors.topic"] == "t"
    assert headers["__connect.errors.partition"] == "1"
    assert headers["__connect.errors.offset"] == "7"
    assert headers["__connect.errors.task.id"] == "2"
    assert headers["__connect.errors.exception.class.name"] == "builtins.ValueError"
    assert headers["__connect.errors.exception.message"] == "bad"
    assert "ValueError: bad" in headers["__connect.errors.exception.stacktrace"]


# --- providers and hiding


def test_env_and_file_providers_resolve_and_a_missing_one_is_named(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.properties"
    secrets.write_text("# db\ndb.password=pa=ss\n")
    resolved = resolve_providers(
        {"a": "${env:TOKEN}", "b": f"x-${{file:{secrets}:db.password}}", "c": None}, environ={"TOKEN": "t"}
    )
    assert resolved == {"a": "t", "b": "x-pa=ss", "c": None}
    with pytest.raises(ConfigValidationError) as error:
        resolve_providers({"a": "${env:NOPE}", "b": f"${{file:{secrets}:other}}"}, environ={})
    assert set(error.value.errors) == {"a", "b"}


def test_hide_replaces_password_values() -> None:
    shown = hide({"connection.password": "x", "http.auth.token": "y", "topic": "t", "empty.password": None})
    assert shown == {
        "connection.password": HIDDEN,
        "http.auth.token": HIDDEN,
        "topic": "t",
        "empty.password": None,
    }


# --- single message transforms


def _sink(
    value: object, key: object = None, topic: str = "orders", headers: dict[str, str] | None = None
) -> SinkRecord:
    return SinkRecord(topic, 0, 5, key, value, headers or {}, 1000)


def _chain(**config: str) -> object:
    return build_chain(config)


def test_each_transform_with_kafkas_semantics() -> None:
    def run(record: SinkRecord, **config: str) -> SinkRecord | None:
        chain = build_chain(
            {"transforms": "t", **{f"transforms.t.{k.replace('_', '.')}": v for k, v in config.items()}}
        )
        return chain.apply(record)

    r = run(
        _sink({"a": 1}),
        type="InsertField$Value",
        topic_field="t",
        offset_field="o",
        static_field="s",
        static_value="v",
    )
    assert r is not None and r.value == {"a": 1, "t": "orders", "o": 5, "s": "v"}
    r = run(_sink({"a": 1, "b": 2, "c": 3}), type="ReplaceField$Value", exclude="c", renames="a:x")
    assert r is not None and r.value == {"x": 1, "b": 2}
    r = run(_sink({"id": 7, "n": "x"}), type="ValueToKey", fields="id")
    assert r is not None and r.key == {"id": 7}
    r = run(_sink({"id": 7}, key={"id": 7}), type="ExtractField$Key", field="id")
    assert r is not None and r.key == 7
    r = run(_sink(3), type="HoistField$Value", field="n")
    assert r is not None and r.value == {"n": 3}
    r = run(_sink({"n": "42", "f": 1}), type="Cast$Value", spec="n:int32,f:string")
    assert r is not None and r.value == {"n": 42, "f": "1"}
    r = run(_sink({"card": "4111", "cvv": 123, "ok": True}), type="MaskField$Value", fields="card,cvv,ok")
    assert r is not None and r.value == {"card": "", "cvv": 0, "ok": False}
    r = run(_sink({"card": "4111"}), type="MaskField$Value", fields="card", replacement="****")
    assert r is not None and r.value == {"card": "****"}
    r = run(
        _sink(1), type="org.apache.kafka.connect.transforms.RegexRouter", regex="(.*)ers", replacement="$1-v2"
    )
    assert r is not None and r.topic == "ord-v2"
    r = run(
        _sink({"ts": 86_400_000}),
        type="TimestampConverter$Value",
        field="ts",
        target_type="string",
        format="yyyy-MM-dd",
    )
    assert r is not None and r.value == {"ts": "1970-01-02"}
    r = run(
        _sink({"ts": "1970-01-02T00:00:00Z"}), type="TimestampConverter$Value", field="ts", target_type="unix"
    )
    assert r is not None and r.value == {"ts": 86_400_000}
    with pytest.raises(ValueError):
        run(_sink({"n": "abc"}), type="Cast$Value", spec="n:int32")


def test_filter_with_predicates_and_negate() -> None:
    chain = build_chain(
        {
            "transforms": "drop",
            "transforms.drop.type": "Filter",
            "transforms.drop.predicate": "tomb",
            "predicates": "tomb",
            "predicates.tomb.type": "RecordIsTombstone",
        }
    )
    assert chain.apply(_sink(None)) is None
    assert chain.apply(_sink(1)) is not None
    keep_only_orders = build_chain(
        {
            "transforms": "f",
            "transforms.f.type": "Filter",
            "transforms.f.predicate": "isOrders",
            "transforms.f.negate": "true",
            "predicates": "isOrders",
            "predicates.isOrders.type": "TopicNameMatches",
            "predicates.isOrders.pattern": "ord.*",
        }
    )
    assert keep_only_orders.apply(_sink(1, topic="orders")) is not None
    assert keep_only_orders.apply(_sink(1, topic="audit")) is None
    by_header = build_chain(
        {
            "transforms": "f",
            "transforms.f.type": "Filter",
            "transforms.f.predicate": "h",
            "predicates": "h",
            "predicates.h.type": "HasHeaderKey",
            "predicates.h.name": "skip",
        }
    )
    assert by_header.apply(_sink(1, headers={"skip": "1"})) is None


def test_extract_new_record_state_flattens_debezium_envelopes() -> None:
    config = {
        "transforms": "unwrap",
        "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
        "transforms.unwrap.add.fields": "op,source.lsn",
    }
    chain = build_chain(config)
    update = {
        "before": {"id": 1, "n": "a"},
        "after": {"id": 1, "n": "b"},
        "op": "u",
        "source": {"lsn": 42, "table": "t"},
        "ts_ms": 1,
    }
    out = chain.apply(_sink(update))
    assert out is not None and out.value == {"id": 1, "n": "b", "__op": "u", "__source_lsn": 42}
    delete = {"before": {"id": 1}, "after": None, "op": "d", "source": {"lsn": 43}}
    assert chain.apply(_sink(delete)) is None
    assert chain.apply(_sink(None)) is None  # drop.tombstones=true
    rewrite = build_chain({**config, "transforms.unwrap.delete.handling.mode": "rewrite"})
    out = rewrite.apply(_sink(delete))
    assert out is not None and out.value["__deleted"] == "true" and out.value["id"] == 1


def test_source_records_transform_too_and_bad_configs_name_their_setting() -> None:
    chain = build_chain(
        {
            "transforms": "r",
            "transforms.r.type": "RegexRouter",
            "transforms.r.regex": "a",
            "transforms.r.replacement": "b",
        }
    )
    out = chain.apply(SourceRecord({"f": 1}, {"p": 1}, "a", "v"))
    assert out is not None and out.topic == "b"
    with pytest.raises(ConfigValidationError) as error:
        build_chain(
            {
                "transforms": "x,y",
                "transforms.x.type": "Cast$Value",
                "transforms.x.spec": "n:int99",
                "transforms.y.type": "ExtractField$Value",
            }
        )
    assert set(error.value.errors) == {"transforms.x.spec", "transforms.y.field"}
