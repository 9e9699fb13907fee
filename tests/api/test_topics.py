"""Topic administration over HTTP: every endpoint of /v1/topics and every error it documents."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Settings
from app.main import create_app
from app.topics import TOPIC_CONFIGS

PROBLEM = "application/problem+json"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"max_partitions_per_topic": 8}


def assert_problem(response: Any, status: int, error_code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["error_code"] == error_code
    assert body["type"].startswith("https://tidelog.dev/errors/")
    assert body["title"] and body["detail"]
    return body


def create(client: Any, name: str = "orders", **body: Any) -> Any:
    return client.post("/v1/topics", json={"name": name, **body})


# --- create


def test_create_topic_answers_its_description(client: Any) -> None:
    response = create(client, partitions=3, configs={"retention.ms": 86_400_000, "cleanup.policy": "compact"})
    assert response.status_code == 201, response.text
    topic = response.json()
    assert topic["name"] == "orders"
    assert len(topic["topic_id"]) == 36
    assert topic["partition_count"] == 3
    assert topic["replication_factor"] == 1
    assert topic["partitions"] == [
        {"partition": p, "leader": 0, "replicas": [0], "isr": [0], "leader_epoch": 0,
         "log_start_offset": 0, "high_watermark": 0, "log_end_offset": 0}
        for p in range(3)
    ]
    assert topic["configs"]["retention.ms"] == 86_400_000
    assert topic["configs"]["cleanup.policy"] == "compact"
    assert topic["configs"]["segment.bytes"] == 1 << 30  # the broker default
    assert set(topic["configs"]) == set(TOPIC_CONFIGS)
    assert "retention.ms" not in topic["defaults"]
    assert "segment.bytes" in topic["defaults"]


def test_create_uses_broker_defaults(client: Any, settings: Settings) -> None:
    topic = create(client).json()
    assert topic["partition_count"] == settings.num_partitions
    assert topic["configs"]["retention.ms"] == settings.log_retention_ms
    assert sorted(topic["defaults"]) == sorted(TOPIC_CONFIGS)


def test_create_opens_the_partition_logs(client: Any, settings: Settings) -> None:
    create(client, partitions=2, configs={"segment.bytes": 1_048_576})
    broker = client.app.state.broker
    assert broker.partition_count("orders") == 2
    assert broker.topic_config("orders").segment_bytes == 1_048_576
    assert (settings.data_dir / "orders-0").is_dir() and (settings.data_dir / "orders-1").is_dir()


def test_validate_only_creates_nothing(client: Any) -> None:
    response = client.post("/v1/topics", params={"validate_only": "true"},
                           json={"name": "orders", "partitions": 2, "configs": {"retention.ms": 5000}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["topic_id"] is None
    assert body["partition_count"] == 2
    assert body["configs"]["retention.ms"] == 5000
    assert_problem(client.get("/v1/topics/orders"), 404, 40401)
    assert client.get("/v1/topics").json() == {"topics": [], "total": 0}


def test_validate_only_still_validates(client: Any) -> None:
    invalid = client.post("/v1/topics?validate_only=true", json={"name": "a", "partitions": 0})
    assert_problem(invalid, 422, 42203)
    create(client)
    assert_problem(client.post("/v1/topics?validate_only=true", json={"name": "orders"}), 409, 40901)


def test_existing_topic_is_409(client: Any) -> None:
    assert create(client).status_code == 201
    body = assert_problem(create(client, partitions=5), 409, 40901)
    assert body["topic"] == "orders"
    assert client.get("/v1/topics/orders").json()["partition_count"] == 1


@pytest.mark.parametrize("name", ["a", "A.b_c-9", "x" * 249, "..."])
def test_valid_topic_names(client: Any, name: str) -> None:
    assert create(client, name).status_code == 201
    assert client.get(f"/v1/topics/{name}").json()["name"] == name


@pytest.mark.parametrize(
    "name", ["", ".", "..", "x" * 250, "has space", "slash/y", "colon:x", "ümlaut", "a*"]
)
def test_invalid_topic_names_are_42202(client: Any, name: str) -> None:
    assert_problem(create(client, name), 422, 42202)


@pytest.mark.parametrize("partitions", [0, -1, 9, 10**12])
def test_partition_count_out_of_range_is_42203(client: Any, partitions: int) -> None:
    assert_problem(create(client, partitions=partitions), 422, 42203)


@pytest.mark.parametrize("factor", [2, 3, 0, -1])
def test_replication_factor_other_than_one_is_42205(client: Any, factor: int) -> None:
    assert_problem(create(client, replication_factor=factor), 422, 42205)


@pytest.mark.parametrize(
    ("configs", "bad"),
    [
        ({"retention.mss": 1}, "retention.mss"),
        ({"retention.ms": "soon"}, "retention.ms"),
        ({"retention.ms": True}, "retention.ms"),
        ({"retention.ms": 1.5}, "retention.ms"),
        ({"retention.ms": -2}, "retention.ms"),
        ({"retention.ms": [1]}, "retention.ms"),
        ({"retention.bytes": -5}, "retention.bytes"),
        ({"segment.bytes": 13}, "segment.bytes"),
        ({"segment.bytes": 2**31}, "segment.bytes"),
        ({"segment.ms": 0}, "segment.ms"),
        ({"cleanup.policy": "forever"}, "cleanup.policy"),
        ({"cleanup.policy": 1}, "cleanup.policy"),
        ({"delete.retention.ms": -1}, "delete.retention.ms"),
        ({"min.cleanable.dirty.ratio": 1.5}, "min.cleanable.dirty.ratio"),
        ({"min.cleanable.dirty.ratio": "NaN"}, "min.cleanable.dirty.ratio"),
        ({"max.message.bytes": -1}, "max.message.bytes"),
        ({"message.timestamp.type": "WallClock"}, "message.timestamp.type"),
        ({"flush.messages": 0}, "flush.messages"),
        ({"flush.ms": -1}, "flush.ms"),
        ({"min.insync.replicas": 0}, "min.insync.replicas"),
        ({"min.insync.replicas": 2}, "min.insync.replicas"),  # more than the replication factor
    ],
)
def test_invalid_configs_are_42201(client: Any, configs: dict[str, Any], bad: str) -> None:
    body = assert_problem(create(client, configs=configs), 422, 42201)
    assert body["config"] == bad
    assert bad in body["detail"]
    assert client.get("/v1/topics").json() == {"topics": [], "total": 0}


def test_config_values_are_normalised(client: Any) -> None:
    topic = create(client, configs={
        "retention.ms": "60000", "cleanup.policy": "delete, compact", "min.cleanable.dirty.ratio": 1,
        "segment.ms": 3.6e6, "message.timestamp.type": "LogAppendTime", "flush.messages": None,
    }).json()
    assert topic["configs"]["retention.ms"] == 60000
    assert topic["configs"]["cleanup.policy"] == "compact,delete"
    assert topic["configs"]["min.cleanable.dirty.ratio"] == 1.0
    assert topic["configs"]["segment.ms"] == 3_600_000
    assert topic["configs"]["message.timestamp.type"] == "LogAppendTime"
    assert topic["configs"]["flush.messages"] is None
    assert "flush.messages" in topic["defaults"]  # null in a create means "the default"


# --- request bodies


def test_malformed_json_is_400(client: Any) -> None:
    response = client.post(
        "/v1/topics", content=b'{"name": "x",', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, 40001)


@pytest.mark.parametrize(
    "body",
    [{}, {"partitions": 1}, {"name": 5}, {"name": "x", "partitions": "three"},
     {"name": "x", "configs": []}, {"name": "x", "partition": 3}, [], "orders"],
)
def test_ill_typed_bodies_are_422(client: Any, body: Any) -> None:
    body_json = assert_problem(client.post("/v1/topics", json=body), 422, 42204)
    assert body_json["errors"] and all("loc" in e and "msg" in e for e in body_json["errors"])


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_bodies_are_415(client: Any, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/v1/topics", content=b'{"name": "orders"}', headers=headers)
    assert_problem(response, 415, 41501)
    assert client.get("/v1/topics").json() == {"topics": [], "total": 0}


def test_json_with_charset_is_accepted(client: Any) -> None:
    response = client.post("/v1/topics", content=b'{"name": "orders"}',
                           headers={"content-type": "application/json; charset=utf-8"})
    assert response.status_code == 201


# --- list and describe


def test_list_topics_by_name(client: Any) -> None:
    for name, partitions in (("zeta", 1), ("alpha", 3), ("mid", 2)):
        create(client, name, partitions=partitions)
    topics = client.get("/v1/topics").json()["topics"]
    assert [(t["name"], t["partition_count"], t["replication_factor"]) for t in topics] == [
        ("alpha", 3, 1), ("mid", 2, 1), ("zeta", 1, 1)
    ]
    assert all(len(t["topic_id"]) == 36 for t in topics)


def test_unknown_topic_is_404(client: Any) -> None:
    body = assert_problem(client.get("/v1/topics/nope"), 404, 40401)
    assert body["topic"] == "nope"
    assert_problem(client.get("/v1/topics/nope/configs"), 404, 40401)


def test_describe_shows_log_offsets(client: Any) -> None:
    """Offsets come from the partition logs: records appended through the Broker show up."""
    from storage import RecordIn

    create(client, partitions=2)
    handles = client.app.state.broker.iter_handles()
    (log,) = [h.log for h in handles if (h.topic, h.partition) == ("orders", 1)]
    log.append_records([RecordIn(value=b"a"), RecordIn(value=b"b")])
    log.update_high_watermark(log.log_end_offset)
    partitions = client.get("/v1/topics/orders").json()["partitions"]
    assert partitions[0]["log_end_offset"] == 0
    assert (partitions[1]["log_start_offset"], partitions[1]["high_watermark"],
            partitions[1]["log_end_offset"]) == (0, 2, 2)


# --- partitions


def test_raise_partitions(client: Any, settings: Settings) -> None:
    create(client, partitions=2)
    response = client.patch("/v1/topics/orders", json={"partitions": 5})
    assert response.status_code == 200, response.text
    assert response.json()["partition_count"] == 5
    assert [p["partition"] for p in response.json()["partitions"]] == [0, 1, 2, 3, 4]
    assert client.app.state.broker.partition_count("orders") == 5
    assert (settings.data_dir / "orders-4").is_dir()


def test_same_partition_count_changes_nothing(client: Any) -> None:
    create(client, partitions=2)
    response = client.patch("/v1/topics/orders", json={"partitions": 2})
    assert response.status_code == 200
    assert response.json()["partition_count"] == 2


def test_lowering_partitions_is_42203(client: Any) -> None:
    create(client, partitions=3)
    body = assert_problem(client.patch("/v1/topics/orders", json={"partitions": 2}), 422, 42203)
    assert body["partitions"] == 3
    assert client.get("/v1/topics/orders").json()["partition_count"] == 3


def test_raising_past_the_limit_is_42203(client: Any) -> None:
    create(client, partitions=3)
    assert_problem(client.patch("/v1/topics/orders", json={"partitions": 9}), 422, 42203)


def test_patch_errors(client: Any) -> None:
    assert_problem(client.patch("/v1/topics/nope", json={"partitions": 2}), 404, 40401)
    create(client)
    assert_problem(client.patch("/v1/topics/orders", json={}), 422, 42204)
    assert_problem(client.patch("/v1/topics/orders", json={"partitions": "2"}), 422, 42204)
    assert_problem(client.patch("/v1/topics/orders", content=b"partitions=2",
                                headers={"content-type": "application/x-www-form-urlencoded"}), 415, 41501)


# --- delete


def test_delete_topic(client: Any, settings: Settings) -> None:
    first_id = create(client, partitions=2).json()["topic_id"]
    response = client.delete("/v1/topics/orders")
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(client.get("/v1/topics/orders"), 404, 40401)
    assert not (settings.data_dir / "orders-0").exists()
    assert_problem(client.delete("/v1/topics/orders"), 404, 40401)
    # The name is free again, for a new topic with a new id.
    second = create(client, partitions=1).json()
    assert second["topic_id"] != first_id
    assert second["partitions"][0]["log_end_offset"] == 0


# --- configs


def test_get_configs(client: Any) -> None:
    create(client, configs={"retention.ms": 1000})
    body = client.get("/v1/topics/orders/configs").json()
    assert body["topic"] == "orders"
    assert body["configs"]["retention.ms"] == 1000
    assert set(body["configs"]) == set(TOPIC_CONFIGS)
    assert "retention.ms" not in body["defaults"] and "segment.ms" in body["defaults"]


def test_put_configs_merges_and_null_resets(client: Any, settings: Settings) -> None:
    create(client, configs={"retention.ms": 1000, "segment.ms": 60_000})
    response = client.put("/v1/topics/orders/configs",
                          json={"configs": {"retention.ms": None, "cleanup.policy": "compact"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["configs"]["retention.ms"] == settings.log_retention_ms  # reset to the default
    assert body["configs"]["segment.ms"] == 60_000  # untouched
    assert body["configs"]["cleanup.policy"] == "compact"
    assert "retention.ms" in body["defaults"]
    assert "segment.ms" not in body["defaults"] and "cleanup.policy" not in body["defaults"]
    # The open logs have the new config at once.
    config = client.app.state.broker.topic_config("orders")
    assert config.cleanup_policy == "compact"
    assert config.retention_ms == settings.log_retention_ms
    assert config.segment_ms == 60_000


def test_put_invalid_configs_changes_nothing(client: Any) -> None:
    create(client, configs={"retention.ms": 1000})
    assert_problem(client.put("/v1/topics/orders/configs",
                              json={"configs": {"segment.ms": 5000, "retention.ms": "never"}}), 422, 42201)
    assert_problem(client.put("/v1/topics/orders/configs", json={"configs": {"bogus": 1}}), 422, 42201)
    assert_problem(client.put("/v1/topics/orders/configs", json={"configs": {"min.insync.replicas": 3}}),
                   422, 42201)
    configs = client.get("/v1/topics/orders/configs").json()["configs"]
    assert configs["retention.ms"] == 1000
    assert configs["segment.ms"] != 5000


def test_put_configs_errors(client: Any) -> None:
    assert_problem(client.put("/v1/topics/nope/configs", json={"configs": {"retention.ms": 1}}), 404, 40401)
    create(client)
    assert_problem(client.put("/v1/topics/orders/configs", json={"retention.ms": 1}), 422, 42204)
    malformed = client.put("/v1/topics/orders/configs", content=b"{",
                           headers={"content-type": "application/json"})
    assert_problem(malformed, 400, 40001)


def test_topics_and_configs_survive_a_restart(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings)) as first:
        create(first, partitions=3, configs={"retention.ms": 1234, "min.insync.replicas": 1,
                                             "segment.index.bytes": 4096})
        first.put("/v1/topics/orders/configs", json={"configs": {"cleanup.policy": "compact"}})
    with TestClient(create_app(settings)) as second:
        topic = second.get("/v1/topics/orders").json()
        assert topic["partition_count"] == 3
        assert topic["configs"]["retention.ms"] == 1234
        assert topic["configs"]["cleanup.policy"] == "compact"
        assert second.app.state.broker.topic_config("orders").retention_ms == 1234


@pytest.mark.postgres
def test_topic_admin_with_a_postgresql_catalog(pg_url: str, data_dir: Any) -> None:
    from fastapi.testclient import TestClient

    settings = Settings(data_dir=data_dir, catalog_url=pg_url, log_retention_check_interval_ms=3_600_000)
    with TestClient(create_app(settings)) as client:
        assert create(client, partitions=2, configs={"min.cleanable.dirty.ratio": 0.1}).status_code == 201
        assert_problem(create(client), 409, 40901)
        assert client.patch("/v1/topics/orders", json={"partitions": 4}).json()["partition_count"] == 4
        configs = client.put("/v1/topics/orders/configs", json={"configs": {"retention.ms": 99}}).json()
        assert configs["configs"]["retention.ms"] == 99
        assert configs["configs"]["min.cleanable.dirty.ratio"] == 0.1
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/topics/orders").json()["partition_count"] == 4
        assert client.delete("/v1/topics/orders").status_code == 204
        assert client.get("/v1/topics").json() == {"topics": [], "total": 0}


def test_concurrent_creates_and_deletes_stay_consistent(client: Any, settings: Settings) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from app.errors_base import UnknownTopicError

    def churn(i: int) -> list[int]:
        statuses = []
        for _ in range(6):
            statuses.append(create(client, "churn", partitions=2).status_code)
            statuses.append(client.delete("/v1/topics/churn").status_code)
        return statuses

    with ThreadPoolExecutor(4) as pool:
        statuses = [s for result in pool.map(churn, range(4)) for s in result]
    assert set(statuses) <= {201, 204, 404, 409}
    assert statuses.count(201) >= 1
    exists = client.get("/v1/topics/churn").status_code == 200
    broker = client.app.state.broker
    if exists:
        assert broker.partition_count("churn") == 2
        assert (settings.data_dir / "churn-0").is_dir()
    else:
        with pytest.raises(UnknownTopicError):
            broker.partition_count("churn")
        assert not (settings.data_dir / "churn-0").exists()
    # Whatever happened, the name is usable afterwards.
    client.delete("/v1/topics/churn")
    assert create(client, "churn").status_code == 201
    assert (settings.data_dir / "churn-0").is_dir()


def test_a_topic_created_through_another_broker_is_described_here(settings: Settings, tmp_path: Any) -> None:
    """Two brokers share one catalog (each its own data dir): B describes what A created."""
    from fastapi.testclient import TestClient

    other = Settings(data_dir=tmp_path / "b", catalog_url=settings.effective_catalog_url,
                     log_retention_check_interval_ms=3_600_000)
    with TestClient(create_app(settings)) as a, TestClient(create_app(other)) as b:
        assert create(a, partitions=2).status_code == 201
        topic = b.get("/v1/topics/orders")
        assert topic.status_code == 200, topic.text
        assert [p["log_end_offset"] for p in topic.json()["partitions"]] == [0, 0]
        assert a.patch("/v1/topics/orders", json={"partitions": 3}).status_code == 200
        assert b.get("/v1/topics/orders").json()["partition_count"] == 3
        assert b.app.state.broker.partition_count("orders") == 3
