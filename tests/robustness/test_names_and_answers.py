"""Group ids follow the topic-name rules; no answer leaks the data directory's paths."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest


@pytest.mark.parametrize("group", ["a\x00b", ".", "..", "g" * 250, "a b", "é", "a:b"])
def test_group_ids_follow_the_topic_name_rules(client: Any, group: str) -> None:
    segment = quote(group, safe="").replace(".", "%2E")  # "." and ".." would be resolved by the URL
    for answer in (
        client.post(f"/v1/groups/{segment}/members", json={"topics": ["t"]}),
        client.get(f"/v1/groups/{segment}/offsets"),
    ):
        assert answer.status_code == 422, (group, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["error_code"] == 42204
        assert "group" in answer.text


@pytest.mark.parametrize("group", ["g", "...", ".g", "a.b_c-D9", "g" * 249])
def test_group_ids_within_the_rules_are_served(client: Any, group: str) -> None:
    assert client.post("/v1/topics", json={"name": "t"}).status_code in (201, 409)
    answer = client.post(f"/v1/groups/{group}/members", json={"topics": ["t"]})
    assert answer.status_code == 201, answer.text


def test_internal_errors_never_show_file_system_paths(app: Any, data_dir: Any) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as client:
        _provoke_internal_errors(client, app, data_dir)


def _provoke_internal_errors(client: Any, app: Any, data_dir: Any) -> None:
    from storage import errors as storage_errors

    assert client.post("/v1/topics", json={"name": "t"}).status_code == 201
    broker = app.state.broker
    real_fetch = broker.fetch
    where = f"{data_dir}/t-0/00000000000000000000.log"
    failures: list[Exception] = [
        storage_errors.StorageError(f"cannot read the segment {where}: checksum mismatch"),
        OSError(5, "Input/output error", where),
        RuntimeError(f"unexpected state in {where}"),
    ]
    try:
        for failure in failures:

            async def failing_fetch(*args: Any, failure: Exception = failure, **kwargs: Any) -> Any:
                raise failure

            broker.fetch = failing_fetch
            answer = client.get("/v1/topics/t/partitions/0/records", params={"offset": 0})
            assert answer.status_code >= 500, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert str(data_dir) not in answer.text and "/t-0/" not in answer.text, answer.text
            assert answer.json()["detail"]
    finally:
        broker.fetch = real_fetch


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/v1/topics", "application/xml"),
        ("/v1/topics", "text/csv, text/html;q=0.9"),
        ("/v1/topics/t/partitions/0/records", "image/png"),
        ("/v1/topics", "application/json;q=0"),
        ("/v1/topics/t/events", "application/xml"),
    ],
)
def test_an_accept_the_broker_cannot_serve_is_406(client: Any, path: str, accept: str) -> None:
    answer = client.get(path, headers={"accept": accept})
    assert answer.status_code == 406, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["error_code"] == 40601


@pytest.mark.parametrize(
    "accept", ["*/*", "application/*", "application/json", "application/x-ndjson", "text/html, */*;q=0.8", ""]
)
def test_an_accept_the_broker_can_serve_is_answered(client: Any, accept: str) -> None:
    assert client.post("/v1/topics", json={"name": "t"}).status_code in (201, 409)
    answer = client.get("/v1/topics/t/partitions/0/records", headers={"accept": accept})
    assert answer.status_code == 200, answer.text
