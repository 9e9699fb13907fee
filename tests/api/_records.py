"""Helpers of the produce/fetch/offsets API tests."""

from __future__ import annotations

from typing import Any

PROBLEM_JSON = "application/problem+json"


def create_topic(client: Any, name: str, partitions: int = 1, **configs: object) -> None:
    body: dict[str, Any] = {"name": name, "partitions": partitions}
    if configs:
        body["configs"] = {k.replace("_", "."): v for k, v in configs.items()}
    response = client.post("/v1/topics", json=body)
    assert response.status_code == 201, response.text


def assert_problem(response: Any, status: int, error_code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["error_code"] == error_code
    assert body["title"] and body["detail"] and body["type"]
    return body


def fetch(client: Any, topic: str, partition: int = 0, **params: object) -> dict[str, Any]:
    params.setdefault("offset", 0)
    response = client.get(f"/v1/topics/{topic}/partitions/{partition}/records", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
