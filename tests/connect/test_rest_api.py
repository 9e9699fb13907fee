"""The connect REST API: Kafka Connect's paths and JSON shapes under /v1, tidelog's problem+json errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int, error_code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["error_code"] == error_code
    return body


def file_source(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"connector.class": "file-source", "file": str(tmp_path / "in.txt"), "topic": "lines", **extra}


def test_create_get_list_and_delete_with_kafka_shapes(client: Any, tmp_path: Path) -> None:
    created = client.post("/v1/connectors", json={"name": "lines", "config": file_source(tmp_path)})
    assert created.status_code == 201, created.text
    assert created.json() == {
        "name": "lines",
        "config": {**file_source(tmp_path), "name": "lines"},
        "tasks": [{"connector": "lines", "task": 0}],
        "type": "source",
    }
    assert client.get("/v1/connectors").json() == ["lines"]
    assert client.get("/v1/connectors/lines").json() == created.json()
    assert client.get("/v1/connectors/lines/config").json() == {**file_source(tmp_path), "name": "lines"}
    tasks = client.get("/v1/connectors/lines/tasks").json()
    assert tasks[0]["id"] == {"connector": "lines", "task": 0}
    assert tasks[0]["config"]["topic"] == "lines"
    status = client.get("/v1/connectors/lines/status").json()
    assert status == {
        "name": "lines",
        "connector": {"state": "UNASSIGNED", "worker_id": ""},
        "tasks": [{"id": 0, "state": "UNASSIGNED", "worker_id": ""}],
        "type": "source",
    }
    expanded = client.get("/v1/connectors", params=[("expand", "status"), ("expand", "info")]).json()
    assert set(expanded["lines"]) == {"status", "info"}
    assert expanded["lines"]["info"]["type"] == "source"
    assert client.delete("/v1/connectors/lines").status_code == 204
    assert_problem(client.get("/v1/connectors/lines"), 404, 40430)
    assert client.get("/v1/connectors").json() == []


def test_duplicate_name_and_invalid_config_are_problems(client: Any, tmp_path: Path) -> None:
    assert (
        client.post("/v1/connectors", json={"name": "a", "config": file_source(tmp_path)}).status_code == 201
    )
    assert_problem(
        client.post("/v1/connectors", json={"name": "a", "config": file_source(tmp_path)}), 409, 40930
    )
    body = assert_problem(
        client.post(
            "/v1/connectors",
            json={"name": "b", "config": {"connector.class": "file-source", "tasks.max": "zero"}},
        ),
        422,
        42230,
    )
    assert set(body["errors"]) >= {"file", "topic", "tasks.max"}
    assert_problem(
        client.post("/v1/connectors", json={"name": "c", "config": {"connector.class": "nope"}}), 404, 40432
    )
    bad_transform = file_source(tmp_path, transforms="x", **{"transforms.x.type": "NoSuchTransform"})
    body = assert_problem(
        client.post("/v1/connectors", json={"name": "d", "config": bad_transform}), 422, 42230
    )
    assert "transforms.x.type" in body["errors"]


def test_put_creates_then_replaces_and_patch_merges(client: Any, tmp_path: Path) -> None:
    first = client.put("/v1/connectors/p/config", json=file_source(tmp_path))
    assert first.status_code == 201, first.text
    second = client.put("/v1/connectors/p/config", json=file_source(tmp_path, **{"batch.size": "10"}))
    assert second.status_code == 200
    assert second.json()["config"]["batch.size"] == "10"
    patched = client.patch("/v1/connectors/p/config", json={"batch.size": None, "format": "ndjson"})
    assert patched.status_code == 200, patched.text
    assert "batch.size" not in patched.json()["config"]
    assert patched.json()["config"]["format"] == "ndjson"
    assert_problem(client.patch("/v1/connectors/none/config", json={"a": "b"}), 404, 40430)


def test_password_settings_show_hidden_and_hidden_keeps_the_secret(client: Any, tmp_path: Path) -> None:
    config = file_source(tmp_path, **{"connection.password": "s3cret", "api.token": "t0ken"})
    created = client.post("/v1/connectors", json={"name": "s", "config": config}).json()
    assert created["config"]["connection.password"] == "[hidden]"
    assert created["config"]["api.token"] == "[hidden]"
    assert client.get("/v1/connectors/s/config").json()["connection.password"] == "[hidden]"
    assert client.get("/v1/connectors/s/tasks").json()[0]["config"]["connection.password"] == "[hidden]"
    assert "s3cret" not in client.get("/v1/connectors", params={"expand": "info"}).text
    # A GET's answer put back unchanged keeps the stored secret (the worker still receives it).
    client.put("/v1/connectors/s/config", json=client.get("/v1/connectors/s/config").json())
    beat = client.post("/v1/connect/workers/w1/heartbeat", json={"running": []}).json()
    assert beat["assignments"][0]["connector_config"]["connection.password"] == "s3cret"


def test_pause_stop_resume_and_offsets_only_when_stopped(client: Any, tmp_path: Path) -> None:
    client.post("/v1/connectors", json={"name": "o", "config": file_source(tmp_path)})
    assert client.get("/v1/connectors/o/offsets").json() == {"offsets": []}
    entry = {"partition": {"filename": "/x"}, "offset": {"position": 10}}
    assert_problem(client.patch("/v1/connectors/o/offsets", json={"offsets": [entry]}), 409, 40931)
    assert client.put("/v1/connectors/o/pause").status_code == 202
    assert client.get("/v1/connectors/o/status").json()["connector"]["state"] == "PAUSED"
    assert client.put("/v1/connectors/o/stop").status_code == 202
    status = client.get("/v1/connectors/o/status").json()
    assert status["connector"]["state"] == "STOPPED" and status["tasks"] == []
    altered = client.patch("/v1/connectors/o/offsets", json={"offsets": [entry]})
    assert altered.json() == {"message": "The offsets for this connector have been altered successfully"}
    assert client.get("/v1/connectors/o/offsets").json() == {"offsets": [entry]}
    reset = client.delete("/v1/connectors/o/offsets")
    assert reset.json() == {"message": "The offsets for this connector have been reset successfully"}
    assert client.get("/v1/connectors/o/offsets").json() == {"offsets": []}
    assert client.put("/v1/connectors/o/resume").status_code == 202
    assert client.get("/v1/connectors/o/status").json()["connector"]["state"] == "UNASSIGNED"


def test_initial_state_and_restart_answers(client: Any, tmp_path: Path) -> None:
    created = client.post(
        "/v1/connectors", json={"name": "r", "config": file_source(tmp_path), "initial_state": "STOPPED"}
    )
    assert created.json()["tasks"] == []
    client.put("/v1/connectors/r/resume")
    assert client.post("/v1/connectors/r/restart").status_code == 204
    answer = client.post("/v1/connectors/r/restart", params={"includeTasks": "true"})
    assert answer.status_code == 202
    assert answer.json()["tasks"][0]["state"] in ("RESTARTING", "UNASSIGNED")
    assert client.post("/v1/connectors/r/tasks/0/restart").status_code == 204
    assert_problem(client.post("/v1/connectors/r/tasks/7/restart"), 404, 40431)
    assert_problem(client.get("/v1/connectors/r/tasks/7/status"), 404, 40431)


def test_worker_heartbeat_assigns_and_a_stale_generation_is_refused(client: Any, tmp_path: Path) -> None:
    client.post("/v1/connectors", json={"name": "w", "config": file_source(tmp_path)})
    beat = client.post("/v1/connect/workers/w1/heartbeat", json={"running": []}).json()
    [assignment] = beat["assignments"]
    assert (assignment["connector"], assignment["task"], assignment["target_state"]) == ("w", 0, "RUNNING")
    generation = assignment["generation"]
    ok = client.put(
        "/v1/connect/tasks/w/0/status", json={"worker_id": "w1", "generation": generation, "state": "RUNNING"}
    )
    assert ok.status_code == 204
    status = client.get("/v1/connectors/w/tasks/0/status").json()
    assert status == {"id": 0, "state": "RUNNING", "worker_id": "w1"}
    stale = client.post(
        "/v1/connect/tasks/w/0/offsets",
        json={
            "worker_id": "w1",
            "generation": generation - 1,
            "offsets": [{"partition": {"filename": "f"}, "offset": {"position": 1}}],
        },
    )
    assert_problem(stale, 409, 40932)
    assert client.get("/v1/connectors/w/offsets").json() == {"offsets": []}
    stored = client.post(
        "/v1/connect/tasks/w/0/offsets",
        json={
            "worker_id": "w1",
            "generation": generation,
            "topics": ["lines"],
            "offsets": [{"partition": {"filename": "f"}, "offset": {"position": 1}}],
        },
    )
    assert stored.status_code == 204
    assert client.get("/v1/connectors/w/offsets").json()["offsets"][0]["offset"] == {"position": 1}
    assert client.get("/v1/connectors/w/topics").json() == {"w": {"topics": ["lines"]}}
    assert client.put("/v1/connectors/w/topics/reset").status_code == 200
    assert client.get("/v1/connectors/w/topics").json() == {"w": {"topics": []}}
    failed = client.put(
        "/v1/connect/tasks/w/0/status",
        json={"worker_id": "w1", "generation": generation, "state": "FAILED", "trace": "Traceback: boom"},
    )
    assert failed.status_code == 204
    task = client.get("/v1/connectors/w/status").json()["tasks"][0]
    assert task["state"] == "FAILED" and task["trace"] == "Traceback: boom"


def test_plugins_config_and_validate(client: Any) -> None:
    plugins = client.get("/v1/connector-plugins").json()
    assert {"class": "file-source", "type": "source", "version": "0.1.0"} in plugins
    keys = client.get("/v1/connector-plugins/file-sink/config").json()
    names = {k["name"] for k in keys}
    assert {"file", "topics", "errors.tolerance", "errors.deadletterqueue.topic.name"} <= names
    assert set(keys[0]) == {
        "name",
        "type",
        "required",
        "default_value",
        "importance",
        "documentation",
        "group",
        "width",
        "display_name",
        "dependents",
        "order",
    }
    report = client.put(
        "/v1/connector-plugins/file-sink/config/validate",
        json={"connector.class": "file-sink", "name": "x", "errors.tolerance": "some"},
    ).json()
    assert report["name"] == "file-sink"
    errors = {c["value"]["name"]: c["value"]["errors"] for c in report["configs"] if c["value"]["errors"]}
    assert set(errors) == {"file", "errors.tolerance", "topics"}
    assert report["error_count"] == 3
    assert_problem(client.get("/v1/connector-plugins/nope/config"), 404, 40432)


def test_a_sink_that_never_consumed_has_no_offsets(client: Any, tmp_path: Path) -> None:
    config = {"connector.class": "file-sink", "file": str(tmp_path / "out"), "topics": "t"}
    assert client.post("/v1/connectors", json={"name": "k", "config": config}).status_code == 201
    assert client.get("/v1/connectors/k/offsets").json() == {"offsets": []}


def test_a_stopped_sinks_offsets_are_its_groups_and_can_be_altered(client: Any, tmp_path: Path) -> None:
    assert client.post("/v1/topics", json={"name": "t", "partitions": 2}).status_code == 201
    config = {"connector.class": "file-sink", "file": str(tmp_path / "out"), "topics": "t"}
    client.post("/v1/connectors", json={"name": "k", "config": config, "initial_state": "STOPPED"})
    entry = {"partition": {"kafka_topic": "t", "kafka_partition": 1}, "offset": {"kafka_offset": 0}}
    altered = client.patch("/v1/connectors/k/offsets", json={"offsets": [entry]})
    assert altered.status_code == 200, altered.text
    assert client.get("/v1/connectors/k/offsets").json() == {"offsets": [entry]}
    assert client.get("/v1/groups/connect-k/offsets").json()["offsets"][0]["partition"] == 1
    bad = {"partition": {"kafka_topic": "t", "kafka_partition": 9}, "offset": {"kafka_offset": 0}}
    assert_problem(client.patch("/v1/connectors/k/offsets", json={"offsets": [bad]}), 404, 40402)
    assert client.delete("/v1/connectors/k/offsets").status_code == 200
    assert client.get("/v1/connectors/k/offsets").json() == {"offsets": []}
