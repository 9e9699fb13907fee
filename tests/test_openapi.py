"""The committed OpenAPI document matches the app, is valid, and documents every error answer."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from app.config import Settings
from app.main import create_app

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    spec: dict[str, Any] = create_app(Settings()).openapi()
    return spec


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def test_committed_spec_matches_the_app(generated: dict[str, Any]) -> None:
    committed = json.loads(SPEC_PATH.read_text())
    assert committed == generated, (
        "openapi/openapi.json is out of date: regenerate it with `make openapi` "
        "(tidelog openapi > openapi/openapi.json) and commit it"
    )


def test_spec_is_valid_openapi(generated: dict[str, Any]) -> None:
    validate(generated)


def test_operation_ids_are_stable_and_unique(generated: dict[str, Any]) -> None:
    ids = [op["operationId"] for _method, _path, op in _operations(generated)]
    assert len(ids) == len(set(ids))
    for method, path, op in _operations(generated):
        tag = op["tags"][0]
        assert re.fullmatch(rf"{re.escape(tag)}-[a-z][a-z0-9_]*", op["operationId"]), (method, path)
    assert "topics-create_topic" in ids


def test_every_error_answer_is_a_documented_problem(generated: dict[str, Any]) -> None:
    assert "Problem" in generated["components"]["schemas"]
    for method, path, op in _operations(generated):
        responses = op["responses"]
        assert "500" in responses, (method, path)
        errors = {status: r for status, r in responses.items() if status[0] in "45"}
        for status, response in errors.items():
            assert list(response["content"]) == [PROBLEM], (method, path, status)
            assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
            assert re.search(rf"\b{status}\d\d\b", response["description"]), (method, path, status)
        if path.startswith("/v1/"):
            assert {"422", "503"} <= set(errors), (method, path)
