"""Every integer a client sends has both bounds in the spec, and the server answers 422 beyond them.

Integers beyond what the catalog or the record format holds (a ``producer_id`` of 2**73, a
``rebalance_timeout_ms`` of 2**64, a committed offset of 2**63) used to answer 500; the spec now
states the bounds (int64 where the catalog or the format holds int64, smaller where the server is
stricter) and the server enforces them with a 422 naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _integers(spec: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]) -> Iterator[
    tuple[str, dict[str, Any]]
]:
    """Every integer schema reachable from ``schema`` (a request's), with where it is."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return
        seen = seen | {name}
        yield from _integers(spec, _resolve(spec, schema), f"{where}→{name}", seen)
        return
    if schema.get("type") == "integer":
        yield where, schema
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, sub in enumerate(schema.get(key, [])):
            yield from _integers(spec, sub, f"{where}[{key}{i}]", seen)
    for name, sub in schema.get("properties", {}).items():
        yield from _integers(spec, sub, f"{where}.{name}", seen)
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, dict):
            yield from _integers(spec, sub, f"{where}.{key}", seen)


def _request_integers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for parameter in operation.get("parameters", []):
                where = f"{method.upper()} {path} {parameter['in']}:{parameter['name']}"
                yield from _integers(spec, parameter.get("schema", {}), where, set())
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                where = f"{method.upper()} {path} body({media})"
                yield from _integers(spec, content.get("schema", {}), where, set())


def test_every_request_integer_has_both_bounds(app: Any) -> None:
    spec = app.openapi()
    unbounded = [
        where
        for where, schema in _request_integers(spec)
        if not ({"minimum", "exclusiveMinimum"} & schema.keys())
        or not ({"maximum", "exclusiveMaximum"} & schema.keys())
    ]
    assert not unbounded, "integers without both bounds:\n" + "\n".join(unbounded)
    assert len(list(_request_integers(spec))) > 20  # the walk does find the integers


BIG = 2**63  # one beyond int64
G = "/v1/groups/g"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/v1/producers", {"producer_id": 2**73, "producer_epoch": 0}, "producer_id"),
        (
            "post", "/v1/groups/g/members", {"topics": ["t"], "rebalance_timeout_ms": 2**64},
            "rebalance_timeout_ms",
        ),
        ("post", f"{G}/offsets", {"offsets": [{"topic": "t", "partition": 0, "offset": BIG}]}, "offset"),
        ("post", "/v1/groups/g/offsets/reset", {"topics": ["t"], "to": "offset", "value": 2**64}, "value"),
        ("post", f"{G}/members/m/seek", {"topic": "t", "partition": BIG, "to": "earliest"}, "partition"),
    ],
)
def test_integers_beyond_the_bounds_are_422_naming_the_field(
    client: Any, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    client.post("/v1/topics", json={"name": "t"})
    answer = getattr(client, method)(path, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in answer.text


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "n", "partitions": 2**70}, 42203),
        ({"name": "n", "replication_factor": 2**70}, 42205),
    ],
)
def test_partition_count_and_replication_factor_keep_their_codes(
    client: Any, body: dict[str, Any], code: int
) -> None:
    answer = client.post("/v1/topics", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error_code"] == code


def test_a_session_timeout_beyond_int64_keeps_its_code(client: Any) -> None:
    client.post("/v1/topics", json={"name": "t"})
    answer = client.post("/v1/groups/g/members", json={"topics": ["t"], "session_timeout_ms": 2**64})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error_code"] == 42207
