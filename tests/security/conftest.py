"""Fixtures of the authorization tests: an app with ACLs enforced, callers chosen per request.

Authentication is another part of the broker; these tests stand in for it with :class:`AsPrincipal`,
a test-only ASGI wrapper that puts the principal named by the ``X-Test-Principal`` header into the
scope under ``SCOPE_KEY``, exactly where authentication leaves it. Without the header the request is
anonymous. Nothing of it exists in the broker itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from app.security.principal import SCOPE_KEY, Principal

SUPER = "User:admin"


class AsPrincipal:
    """Wraps an app: ``X-Test-Principal: User:alice`` makes the request run as ``User:alice``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:  # TestClient and tests reach app.state through us
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-test-principal":
                    scope = {**scope, SCOPE_KEY: Principal(value.decode(), "api_key")}
        await self.app(scope, receive, send)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"authorizer_enabled": True, "super_users": SUPER}


@pytest.fixture
def secured(app: Any) -> Iterator[Any]:
    """A TestClient over the app wrapped in :class:`AsPrincipal` (lifespan running)."""
    from fastapi.testclient import TestClient

    with TestClient(AsPrincipal(app)) as test_client:
        yield test_client


@pytest.fixture
def as_user() -> Callable[[str | None], dict[str, str]]:
    """``headers=as_user("User:alice")``; ``None`` is anonymous."""

    def headers(principal: str | None) -> dict[str, str]:
        return {} if principal is None else {"X-Test-Principal": principal}

    return headers


def acl(principal: str, resource_type: str, name: str, operation: str, *, pattern: str = "LITERAL",
        permission: str = "ALLOW", host: str = "*") -> dict[str, str]:
    """One binding as ``POST /v1/acls`` takes it."""
    return {"principal": principal, "host": host, "resource_type": resource_type, "pattern_type": pattern,
            "resource_name": name, "operation": operation, "permission": permission}
