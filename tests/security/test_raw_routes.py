"""Authorization reaches raw ASGI routes too: the middleware by the route table, and ``require``
from inside a raw endpoint with nothing but its scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from app.security.acl import Operation, ResourceType
from app.security.authorizer_middleware import require
from tests.security.conftest import SUPER, acl


class RawRead:
    """A raw ASGI endpoint (no FastAPI request object) that reads topic ``a``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        require(scope, Operation.READ, ResourceType.TOPIC, "a")
        await PlainTextResponse("read a")(scope, receive, send)


@pytest.fixture
def raw_client(app: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient
    from starlette.routing import Route

    from tests.security.conftest import AsPrincipal

    app.router.routes.append(Route("/raw/read-a", RawRead()))
    with TestClient(AsPrincipal(app)) as client:
        yield client


def test_require_in_a_raw_route(raw_client: Any, as_user: Callable[[str | None], dict[str, str]]) -> None:
    admin = as_user(SUPER)
    assert raw_client.post("/v1/topics", json={"name": "a"}, headers=admin).status_code == 201
    refused = raw_client.get("/raw/read-a", headers=as_user("User:r"))
    assert refused.status_code == 404 and refused.json()["error_code"] == 40401
    assert raw_client.post("/v1/acls", json={"acls": [acl("User:r", "TOPIC", "a", "DESCRIBE")]},
                           headers=admin).status_code == 201
    described = raw_client.get("/raw/read-a", headers=as_user("User:r"))
    assert described.status_code == 403 and described.json()["error_code"] == 40311
    assert raw_client.post("/v1/acls", json={"acls": [acl("User:r", "TOPIC", "a", "READ")]},
                           headers=admin).status_code == 201
    allowed = raw_client.get("/raw/read-a", headers=as_user("User:r"))
    assert allowed.status_code == 200 and allowed.text == "read a"
