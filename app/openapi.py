"""The broker's OpenAPI document: FastAPI's output made precise for generated SDKs.

FastAPI writes OpenAPI 3.1 from the routes and models. ``refine`` post-processes it with rules that
hold for every route, present and future, so a new route needs no entry here:

- error answers are ``application/problem+json`` only (FastAPI adds an ``application/json`` twin);
- an operation that takes a JSON body documents the 400 of a body that is not JSON and the 415 of
  another ``Content-Type`` (every JSON body is read the same way), where the route did not;
- ``Problem.error_code`` is the ``ErrorCode`` enum of ``app/error_codes.py``, with its names
  (``x-enum-varnames``) and one description per code (``x-enum-descriptions``), so generators emit a
  named enum (``ErrorCode.UNKNOWN_TOPIC``) instead of a bare integer;
- a schema read only in answers marks as required every property that has a non-null default (the
  answer always carries it), and no answer property keeps a ``default`` (it describes input);
- a schema read in requests keeps its defaulted properties optional: the default moves into the
  property's description, because a ``default`` makes some generators (openapi-typescript's
  ``defaultNonNullable``) type the property as required;
- a stream of items (``application/x-ndjson``, ``application/jsonl``, ``text/event-stream``) keeps
  ``schema: string`` (what a 3.1 generator reads: the body is text) and describes each item in
  ``x-item-schema``, built with ``json_lines`` and ``event_stream`` below;
- descriptions are Markdown: reST's double backticks become single ones;
- ``securitySchemes`` declare the credentials (bearer: API key or JWT; basic; the session cookie).

``openapi_3_2`` turns the refined 3.1 document into its OpenAPI 3.2 rendition, where ``x-item-schema``
is the standard ``itemSchema`` of sequential media types. Both documents are committed under
``openapi/`` and served (``/openapi.json``, ``/openapi-3.2.json``); the 3.1 one stays the default
because the pinned generators read 3.1.
"""

from __future__ import annotations

import copy
import io
import json
import re
import tokenize
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from app import error_codes
from app.error_codes import ErrorCode
from app.errors import PROBLEM_JSON

__all__ = [
    "ITEM_SCHEMA",
    "SEQUENTIAL_MEDIA_TYPES",
    "event_stream",
    "install_openapi",
    "json_lines",
    "openapi_3_2",
    "refine",
]


ITEM_SCHEMA = "x-item-schema"
# Media types whose body is a sequence of items (OpenAPI 3.2, "Sequential media types").
SEQUENTIAL_MEDIA_TYPES = ("application/x-ndjson", "application/jsonl", "text/event-stream")
_COMPONENT_REF = "#/components/schemas/{model}"
# Models an item schema refers to, carried beside it until ``refine`` files them under components.
_DEFS = "x-tidelog-defs"
_SCHEMAS = "#/components/schemas/"


# ------------------------------------------------------------------------- declaring streamed items


def _model_schema(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``$ref`` to ``model`` and the component schemas it needs (``model`` included)."""
    schema = model.model_json_schema(ref_template=_COMPONENT_REF, mode="serialization")
    defs: dict[str, Any] = schema.pop("$defs", {})
    defs[model.__name__] = schema
    return {"$ref": _COMPONENT_REF.format(model=model.__name__)}, defs


def json_lines(*models: type[BaseModel], description: str) -> dict[str, Any]:
    """The content entry of an NDJSON body: text, each line one of ``models`` (``x-item-schema``)."""
    refs: list[dict[str, Any]] = []
    defs: dict[str, Any] = {}
    for model in models:
        ref, needed = _model_schema(model)
        refs.append(ref)
        defs.update(needed)
    item = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {"schema": {"type": "string", "description": description}, ITEM_SCHEMA: item, _DEFS: defs}


def event_stream(
    events: Mapping[str, type[BaseModel]], *, description: str, with_id: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The 200 answer of a ``text/event-stream`` endpoint whose events are ``events`` (name → data).

    Each event's ``data`` is one line of JSON of its model; the events named in ``with_id`` carry an
    ``id`` (the cursor a client resumes from with ``Last-Event-ID``).
    """
    variants: list[dict[str, Any]] = []
    defs: dict[str, Any] = {}
    for name, model in events.items():
        ref, needed = _model_schema(model)
        defs.update(needed)
        properties: dict[str, Any] = {
            "event": {"const": name},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": ref},
        }
        required = ["event", "data"]
        if name in with_id:
            properties["id"] = {"type": "string", "description": "The cursor to resume after."}
            required.append("id")
        properties["retry"] = {"type": "integer", "minimum": 0}
        variants.append({"type": "object", "title": f"{name} event", "properties": properties,
                         "required": required})
    item = variants[0] if len(variants) == 1 else {"oneOf": variants}
    return {
        "description": description,
        "content": {"text/event-stream": {"schema": {"type": "string"}, ITEM_SCHEMA: item, _DEFS: defs}},
    }


# --------------------------------------------------------------------------------------- the rules


def _operations(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for path in spec.get("paths", {}).values():
        for method, operation in path.items():
            if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}:
                yield operation


def _bodies(operation: dict[str, Any]) -> list[dict[str, Any]]:
    """The operation's request body and answers (each may hold ``content``)."""
    return [operation.get("requestBody", {}), *operation.get("responses", {}).values()]


def _problem_only_errors(spec: dict[str, Any]) -> None:
    for operation in _operations(spec):
        for response in operation.get("responses", {}).values():
            content = response.get("content", {})
            if PROBLEM_JSON in content:
                content.pop("application/json", None)


_BODY_ERRORS = {
    "400": f"error_code {int(ErrorCode.INVALID_REQUEST)} invalid request: the body is not the JSON asked for",
    "415": f"error_code {int(ErrorCode.UNSUPPORTED_MEDIA_TYPE)} unsupported media type: another Content-Type",
}


def _body_errors(spec: dict[str, Any]) -> None:
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operation in _operations(spec):
        content = operation.get("requestBody", {}).get("content", {})
        if not any(t == "application/json" or t.endswith("+json") for t in content):
            continue
        responses = operation.setdefault("responses", {})
        for status, description in _BODY_ERRORS.items():
            responses.setdefault(status, {"description": description, "content": copy.deepcopy(problem)})


def _file_item_defs(spec: dict[str, Any]) -> None:
    """Move the component schemas carried by ``json_lines``/``event_stream`` into components."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for operation in _operations(spec):
        for body in _bodies(operation):
            for media in body.get("content", {}).values():
                for name, schema in media.pop(_DEFS, {}).items():
                    schemas.setdefault(name, schema)


def error_code_descriptions() -> dict[ErrorCode, str]:
    """Each code's comment in ``app/error_codes.py`` (or its title when it has none)."""
    source = Path(error_codes.__file__).read_text(encoding="utf-8")
    comments: dict[str, str] = {}
    pending: list[str] = []  # comment lines above the next member
    line_name: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME and token.string in ErrorCode.__members__ and token.start[1] == 4:
            line_name[token.start[0]] = token.string
            if pending and token.string not in comments:
                comments[token.string] = " ".join(pending)
            pending = []
        elif token.type == tokenize.COMMENT:
            text = token.string.lstrip("#").strip()
            name = line_name.get(token.start[0])
            if name is not None:  # a comment at the end of a member's line: that member's own
                comments[name] = text
            elif token.start[1] == 4 and not re.match(r"\d{3}\b", text):  # not a "404"-style heading
                pending.append(text)
        elif token.type == tokenize.NL and not pending:
            pending = []
    descriptions: dict[ErrorCode, str] = {}
    for code in ErrorCode:
        title = code.name.replace("_", " ").capitalize()
        comment = comments.get(code.name)
        descriptions[code] = f"{title}: {comment}" if comment else title
    return descriptions


def _error_code_enum(spec: dict[str, Any]) -> None:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    descriptions = error_code_descriptions()
    codes = list(ErrorCode)
    schemas["ErrorCode"] = {
        "type": "integer",
        "title": "ErrorCode",
        "description": "The five-digit code of an error answer: its first three digits are the HTTP "
        "status. The list is in docs/errors.md.",
        "enum": [int(code) for code in codes],
        "x-enum-varnames": [code.name for code in codes],
        "x-enum-descriptions": [descriptions[code] for code in codes],
    }
    ref = {"$ref": _SCHEMAS + "ErrorCode"}

    def replace(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "properties" and isinstance(value, dict) and "error_code" in value:
                    prop = value["error_code"]
                    if prop.get("type") == "integer":
                        value["error_code"] = {**ref, **_annotations(prop)}
                    elif _is_nullable_integer(prop):
                        value["error_code"] = {"anyOf": [ref, {"type": "null"}], **_annotations(prop)}
                replace(value)
        elif isinstance(node, list):
            for value in node:
                replace(value)

    for name, schema in schemas.items():
        if name != "ErrorCode":
            replace(schema)
    for operation in _operations(spec):
        replace(operation)


def _annotations(prop: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in prop.items() if k in {"description", "title"}}


def _is_nullable_integer(prop: dict[str, Any]) -> bool:
    variants = prop.get("anyOf", [])
    return sorted(v.get("type", "") for v in variants) == ["integer", "null"] and len(variants) == 2


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_SCHEMAS):
            yield ref.removeprefix(_SCHEMAS)
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def _reachable(spec: dict[str, Any], roots: list[Any]) -> set[str]:
    schemas = spec.get("components", {}).get("schemas", {})
    seen: set[str] = set()
    todo = [name for root in roots for name in _references(root)]
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        todo.extend(_references(schemas[name]))
    return seen


def _defaults(spec: dict[str, Any]) -> None:
    """Answer schemas: a non-null default means always present; request schemas: defaults optional."""
    operations = list(_operations(spec))
    inputs = _reachable(spec, [op.get("requestBody", {}) for op in operations]
                        + [op.get("parameters", []) for op in operations])
    outputs = _reachable(spec, [op.get("responses", {}) for op in operations]) - inputs
    schemas = spec.get("components", {}).get("schemas", {})
    for name in outputs:
        _walk_objects(schemas[name], _output_object)
    for name in inputs:
        _walk_objects(schemas[name], _input_object)
    # Inline request body schemas (written by hand in a route) follow the request rule too.
    for operation in operations:
        for media in operation.get("requestBody", {}).get("content", {}).values():
            if "schema" in media:
                _walk_objects(media["schema"], _input_object)
        for response in operation.get("responses", {}).values():
            for media in response.get("content", {}).values():
                if "schema" in media:
                    _walk_objects(media["schema"], _output_object)


def _walk_objects(node: Any, rule: Callable[[dict[str, Any]], None]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict):
            rule(node)
        for value in node.values():
            _walk_objects(value, rule)
    elif isinstance(node, list):
        for value in node:
            _walk_objects(value, rule)


def _output_object(schema: dict[str, Any]) -> None:
    required: list[str] = list(schema.get("required", []))
    for name, prop in schema["properties"].items():
        if not isinstance(prop, dict) or "default" not in prop:
            continue
        if prop.pop("default") is not None and name not in required:
            required.append(name)
    if required:
        schema["required"] = required


def _input_object(schema: dict[str, Any]) -> None:
    required = set(schema.get("required", []))
    for name, prop in schema["properties"].items():
        if not isinstance(prop, dict) or "default" not in prop or name in required:
            continue
        default = prop.pop("default")
        if default is None:
            continue  # optional and nullable says it already
        text = default if isinstance(default, str) else json.dumps(default, ensure_ascii=False)
        note = f"Default: `{text}`."
        description = prop.get("description")
        prop["description"] = f"{description.rstrip()} {note}" if description else note


_DOUBLE_BACKTICKS = re.compile(r"``(.+?)``", re.DOTALL)


def _markdown(node: Any) -> Any:
    """reST's ``literal`` as Markdown's `literal` in every description and summary."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"description", "summary"} and isinstance(value, str):
                node[key] = _DOUBLE_BACKTICKS.sub(r"`\1`", value)
            elif key == "x-enum-descriptions" and isinstance(value, list):
                node[key] = [_DOUBLE_BACKTICKS.sub(r"`\1`", v) for v in value]
            else:
                _markdown(value)
    elif isinstance(node, list):
        for value in node:
            _markdown(value)
    return node


def refine(spec: dict[str, Any]) -> dict[str, Any]:
    """The refined copy of FastAPI's 3.1 document ``spec`` (the rules of this module's docstring)."""
    spec = copy.deepcopy(spec)
    _problem_only_errors(spec)
    _body_errors(spec)
    _file_item_defs(spec)
    _error_code_enum(spec)
    _defaults(spec)
    _markdown(spec)
    _declare_security(spec)
    return spec


def _declare_security(spec: dict[str, Any]) -> None:
    """The credentials the broker takes (docs/security.md), so generated SDKs accept them; ``{}``
    first: a broker with authentication off (the default on loopback) takes none."""
    spec.setdefault("components", {})["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "tlk_<id>_<secret> (an API key) or a JWT",
            "description": "An API key (`tidelog keys create`) or a JWT from the configured issuer.",
        },
        "basic": {"type": "http", "scheme": "basic", "description": "A password user (`tidelog users`)."},
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": "tidelog_session",
            "description": "The console's session cookie, set by POST /v1/sessions.",
        },
    }
    spec["security"] = [{}, {"bearer": []}, {"basic": []}, {"session": []}]


def openapi_3_2(spec: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.2 rendition of the refined 3.1 document: ``x-item-schema`` → ``itemSchema``."""
    spec = copy.deepcopy(spec)
    spec["openapi"] = "3.2.0"
    for operation in _operations(spec):
        for body in _bodies(operation):
            for media_type, media in body.get("content", {}).items():
                if ITEM_SCHEMA in media:
                    media["itemSchema"] = media.pop(ITEM_SCHEMA)
                    if media_type in SEQUENTIAL_MEDIA_TYPES:
                        media.pop("schema", None)  # itemSchema describes the body item by item
    return spec


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (``/openapi.json``, ``tidelog openapi``) answer the refined document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = refine(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
