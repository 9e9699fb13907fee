"""The raw produce routes (app/routes/raw.py) answer every request exactly as the FastAPI routes do.

One table of requests goes to two brokers (keyed records, so that the sticky partitioner's choice
cannot differ between them), one with ``raw_produce_route`` on and one with it off;
every answer (status, content type, body with the clock's timestamps blanked) must be the same, and
so must the OpenAPI spec. The table covers what the raw routes take and what they leave to FastAPI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from storage.records import RecordIn, encode_batch

BATCH = "application/vnd.tidelog.batch"
JSON = {"Content-Type": "application/json"}


def _batch() -> bytes:
    import time

    now = int(time.time() * 1000)
    return encode_batch([RecordIn(b"1", None, (), now, 8)], base_offset=0, now_ms=now)


# (method, path, query, headers, body)
REQUESTS: list[tuple[str, str, str, dict[str, str], bytes]] = [
    ("POST", "/v1/topics/t/records", "", JSON, b'{"records":[{"key":"k","value":{"a":1}}]}'),
    ("POST", "/v1/topics/t/records", "acks=1", JSON, b'{"records":[{"value":"x","key":"k"}]}'),
    ("POST", "/v1/topics/t/records", "acks=0", JSON, b'{"records":[{"key":"k","value":1}]}'),
    ("POST", "/v1/topics/t/records", "acks=all", {}, b'{"records":[{"key":"k","value":2}]}'),
    ("POST", "/v1/topics/t/records", "acks=-1", JSON, b'{"records":[{"value":3,"partition":1}]}'),
    ("POST", "/v1/topics/t/partitions/1/records", "acks=1", JSON, b'{"records":[{"value":4}]}'),
    ("POST", "/v1/topics/t/partitions/1/records", "", {"Content-Type": BATCH}, b"<batch>"),
    # errors the handler raises
    ("POST", "/v1/topics/t/records", "", JSON, b'{"records":[]}'),
    ("POST", "/v1/topics/t/records", "", JSON, b'{"records":[{"key":"k","value":1}'),
    ("POST", "/v1/topics/t/records", "", JSON, b'{"records":[{"value":1,"partition":9}]}'),
    ("POST", "/v1/topics/t/records", "", JSON, b'{"records":[{"key":1}]}'),
    ("POST", "/v1/topics/t/records", "", JSON, b'{"nope":1}'),
    ("POST", "/v1/topics/missing/records", "", JSON, b'{"records":[{"value":1}]}'),
    ("POST", "/v1/topics/t/partitions/7/records", "", JSON, b'{"records":[{"value":1}]}'),
    ("POST", "/v1/topics/t/records", "", {"Content-Type": "text/plain"}, b"x"),
    ("POST", "/v1/topics/t/records", "", {"Content-Type": BATCH}, b"<batch>"),
    ("POST", "/v1/topics/t/partitions/0/records", "", {"Content-Type": BATCH}, b"garbage"),
    (
        "POST",
        "/v1/topics/t/records",
        "",
        {**JSON, "Idempotency-Key": "k1"},
        b'{"records":[{"key":"k","value":5}]}',
    ),
    (
        "POST",
        "/v1/topics/t/records",
        "",
        {**JSON, "Idempotency-Key": "k1"},
        b'{"records":[{"key":"k","value":5}]}',
    ),
    (
        "POST",
        "/v1/topics/t/records",
        "",
        {**JSON, "Idempotency-Key": "k1"},
        b'{"records":[{"key":"k","value":6}]}',
    ),
    # what the raw routes leave to FastAPI
    ("POST", "/v1/topics/t/records", "acks=2", JSON, b'{"records":[{"key":"k","value":1}]}'),
    ("POST", "/v1/topics/t/records", "acks=1&acks=1", JSON, b'{"records":[{"key":"k","value":1}]}'),
    ("POST", "/v1/topics/t/records", "value_format=json", JSON, b'{"records":[{"key":"k","value":1}]}'),
    ("POST", "/v1/topics/t/records", "foo=bar", JSON, b'{"records":[{"key":"k","value":7}]}'),
    ("POST", "/v1/topics/t/partitions/01/records", "", JSON, b'{"records":[{"value":8}]}'),
    ("POST", "/v1/topics/t/partitions/-1/records", "", JSON, b'{"records":[{"value":1}]}'),
    ("POST", "/v1/topics/t/partitions/99999999999/records", "", JSON, b'{"records":[{"value":1}]}'),
    ("POST", "/v1/topics/t/partitions/x/records", "", JSON, b'{"records":[{"value":1}]}'),
    ("POST", "/v1/topics/" + "a" * 250 + "/records", "", JSON, b'{"records":[{"value":1}]}'),
    (
        "POST",
        "/v1/topics/t/records",
        "",
        {"Content-Type": "application/x-ndjson"},
        b'{"key":"k","value":1}\n',
    ),
    ("GET", "/v1/topics/t/records", "", {}, b""),
    ("PUT", "/v1/topics/t/partitions/0/records", "", JSON, b"{}"),
]


def _normalise(value: Any) -> Any:
    """The answer with what depends on the clock blanked: record timestamps."""
    if isinstance(value, dict):
        return {
            k: ("<ts>" if k in ("timestamp", "log_append_time") else _normalise(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    from app.config import Settings
    from app.main import create_app

    clients = []
    for raw in (True, False):
        data = tmp_path / f"raw-{raw}"
        data.mkdir()
        settings = Settings(data_dir=data, log_retention_check_interval_ms=3_600_000, raw_produce_route=raw)
        clients.append(TestClient(create_app(settings)))
    with clients[0] as raw_client, clients[1] as fastapi_client:
        for client in (raw_client, fastapi_client):
            created = client.post("/v1/topics", json={"name": "t", "partitions": 2})
            assert created.status_code == 201
        yield raw_client, fastapi_client


def test_the_raw_routes_are_in_front(pair: tuple[TestClient, TestClient]) -> None:
    from app.routes.raw import RawProduceRoute

    raw_client, fastapi_client = pair
    assert any(isinstance(r, RawProduceRoute) for r in raw_client.app.router.routes)  # type: ignore[attr-defined]
    assert not any(isinstance(r, RawProduceRoute) for r in fastapi_client.app.router.routes)  # type: ignore[attr-defined]


def test_the_same_requests_get_the_same_answers(pair: tuple[TestClient, TestClient]) -> None:
    answers: list[list[tuple[int, str, Any]]] = []
    for client in pair:
        seen = []
        for method, path, query, headers, body in REQUESTS:
            content = _batch() if body == b"<batch>" else body
            response = client.request(
                method, path + ("?" + query if query else ""), headers=headers, content=content
            )
            kind = response.headers.get("content-type", "")
            if "ndjson" in kind:
                parsed = [_normalise(orjson.loads(line)) for line in response.content.splitlines()]
            elif "json" in kind and response.content:
                parsed = _normalise(orjson.loads(response.content))
            else:
                parsed = response.content
            seen.append((response.status_code, kind, parsed))
        answers.append(seen)
    for request, raw, fastapi in zip(REQUESTS, *answers, strict=True):
        assert raw == fastapi, request[:3]
    # The errors are problem+json with an error code, whichever route answered.
    for (status, kind, body), request in zip(answers[0], REQUESTS, strict=True):
        if status >= 400:
            assert kind.startswith("application/problem+json"), request[:3]
            assert isinstance(body["error_code"], int)
    # Both brokers hold the same records.
    for partition in (0, 1):
        logs = [
            [
                r["value"]
                for r in c.get(f"/v1/topics/t/partitions/{partition}/records", params={"offset": 0}).json()[
                    "records"
                ]
            ]
            for c in pair
        ]
        assert logs[0] == logs[1]


def test_the_spec_is_the_same_with_or_without_the_raw_routes(pair: tuple[TestClient, TestClient]) -> None:
    specs = [c.get("/openapi.json").json() for c in pair]
    assert specs[0] == specs[1]
