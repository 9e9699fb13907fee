"""The committed OpenAPI documents (3.1 and its 3.2 rendition) match the app, are valid, document every
error answer, and are precise where generated SDKs need them to be (app/openapi.py's rules)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import pytest
from fastapi import APIRouter
from openapi_spec_validator import OpenAPIV32SpecValidator, validate
from pydantic import BaseModel

from app.config import Settings
from app.error_codes import ErrorCode
from app.main import create_app
from app.openapi import openapi_3_2

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


# ---------------------------------------------------------------- what generated SDKs rely on

SPEC_3_2_PATH = SPEC_PATH.with_name("openapi-3.2.json")
SEQUENTIAL = ("application/x-ndjson", "application/jsonl", "text/event-stream")


def _schemas(spec: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = spec["components"]["schemas"]
    return schemas


def test_committed_3_2_rendition_matches_the_app(generated: dict[str, Any]) -> None:
    committed = json.loads(SPEC_3_2_PATH.read_text())
    assert committed == openapi_3_2(generated), (
        "openapi/openapi-3.2.json is out of date: regenerate it with `make openapi` "
        "(tidelog openapi --spec-version 3.2 > openapi/openapi-3.2.json) and commit it"
    )
    assert committed["openapi"] == "3.2.0"
    OpenAPIV32SpecValidator(committed).validate()


def test_error_code_is_the_named_enum_of_error_codes(generated: dict[str, Any]) -> None:
    enum = _schemas(generated)["ErrorCode"]
    assert enum["enum"] == [int(code) for code in ErrorCode]
    assert enum["x-enum-varnames"] == [code.name for code in ErrorCode]
    assert len(enum["x-enum-descriptions"]) == len(ErrorCode)
    assert all(enum["x-enum-descriptions"])
    by_name = dict(zip(enum["x-enum-varnames"], enum["x-enum-descriptions"], strict=True))
    assert "expired group member" in by_name["UNKNOWN_MEMBER"]  # the comment of app/error_codes.py
    problem = _schemas(generated)["Problem"]["properties"]["error_code"]
    assert problem["$ref"] == "#/components/schemas/ErrorCode"
    assert '"type": "integer", "title": "Error Code"' not in json.dumps(generated)


def test_group_poll_records_are_fetched_records_and_positions_are_complete(
    generated: dict[str, Any],
) -> None:
    poll = generated["paths"]["/v1/groups/{group}/members/{member_id}/records"]["get"]
    ref = poll["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    out = _schemas(generated)[ref.rsplit("/", 1)[1]]
    assert out["properties"]["records"]["items"] == {"$ref": "#/components/schemas/FetchedRecord"}
    assert set(out["required"]) == {"generation", "assignment", "records", "positions"}
    position = _schemas(generated)[out["properties"]["positions"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(position["required"]) == {"topic", "partition", "offset"}


@pytest.mark.parametrize(
    ("path", "method", "item"),
    [
        ("/v1/topics/{topic}/records", "post", None),
        ("/v1/topics/{topic}/partitions/{partition}/records", "post", None),
        ("/v1/topics/{topic}/partitions/{partition}/records", "get", "FetchedRecord"),
    ],
)
def test_ndjson_is_an_explicit_alternative_with_an_item_schema(
    generated: dict[str, Any], path: str, method: str, item: str | None
) -> None:
    content = generated["paths"][path][method]["responses"]["200"]["content"]
    assert list(content) == ["application/json", "application/x-ndjson"]
    assert "$ref" in content["application/json"]["schema"]
    ndjson = content["application/x-ndjson"]
    assert ndjson["schema"]["type"] == "string"
    if item is not None:
        assert ndjson["x-item-schema"] == {"$ref": f"#/components/schemas/{item}"}
    else:
        assert [v["$ref"] for v in ndjson["x-item-schema"]["oneOf"]]
    rendition = openapi_3_2(generated)["paths"][path][method]["responses"]["200"]["content"]
    assert rendition["application/x-ndjson"] == {"itemSchema": ndjson["x-item-schema"]}


@pytest.mark.parametrize(
    ("path", "events"),
    [
        ("/v1/topics/{topic}/events", {"record", "error"}),
        ("/v1/groups/{group}/events", {"member", "assignment", "record", "error"}),
    ],
)
def test_event_streams_describe_their_events(generated: dict[str, Any], path: str, events: set[str]) -> None:
    stream = generated["paths"][path]["get"]["responses"]["200"]["content"]["text/event-stream"]
    variants = stream["x-item-schema"]["oneOf"]
    assert {v["properties"]["event"]["const"] for v in variants} == events
    for variant in variants:
        data = variant["properties"]["data"]
        assert data["contentMediaType"] == "application/json"
        assert data["contentSchema"]["$ref"].rsplit("/", 1)[1] in _schemas(generated)
    record = next(v for v in variants if v["properties"]["event"]["const"] == "record")
    assert "id" in record["required"]
    rendition = openapi_3_2(generated)["paths"][path]["get"]["responses"]["200"]["content"]
    assert rendition["text/event-stream"] == {"itemSchema": stream["x-item-schema"]}


def _request_schemas(spec: dict[str, Any]) -> list[dict[str, Any]]:
    bodies = [op.get("requestBody", {}) for _m, _p, op in _operations(spec)]
    names = {
        ref.rsplit("/", 1)[1]
        for body in bodies
        for ref in re.findall(r'"\$ref": "([^"]+)"', json.dumps(body))
    }
    return [_schemas(spec)[name] for name in sorted(names)]


def test_defaulted_request_fields_are_optional_and_carry_no_default(generated: dict[str, Any]) -> None:
    join = _schemas(generated)["JoinIn"]
    for name in ("assignor", "auto_offset_reset"):
        assert name not in join.get("required", [])
        assert "default" not in join["properties"][name]
    assert "Default: `range`." in join["properties"]["assignor"]["description"]
    # Generic: no request property keeps a default (openapi-typescript would type it as required).
    for schema in _request_schemas(generated):
        assert '"default"' not in json.dumps(schema.get("properties", {})), schema["title"]


def test_descriptions_are_markdown(generated: dict[str, Any]) -> None:
    text = json.dumps(generated)
    assert "``" not in text, "reST double backticks in the spec: write Markdown's single ones"
    assert "``" not in json.dumps(openapi_3_2(generated))


class NewIn(BaseModel):
    mode: Literal["a", "b"] = "a"
    size: int = 3


class NewOut(BaseModel):
    count: int = 0
    note: str | None = None
    error_code: int


def test_the_rules_apply_to_a_route_added_later() -> None:
    """A route the rules were never told of gets them: no per-route list in app/openapi.py."""
    app = create_app(Settings())
    router = APIRouter(tags=["new"])

    @router.post("/v1/new", response_model=NewOut, responses={200: {"description": "``New`` answer."}})
    async def new_route(body: NewIn) -> NewOut:
        """Make a ``new`` thing."""
        return NewOut(error_code=40001)

    app.include_router(router)
    spec = app.openapi()
    new_in, new_out = _schemas(spec)["NewIn"], _schemas(spec)["NewOut"]
    assert not new_in.get("required") and '"default"' not in json.dumps(new_in)
    assert set(new_out["required"]) == {"count", "error_code"}
    assert new_out["properties"]["error_code"]["$ref"] == "#/components/schemas/ErrorCode"
    assert "``" not in json.dumps(spec["paths"]["/v1/new"])
