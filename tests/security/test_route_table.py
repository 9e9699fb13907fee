"""Every route of the application has a row in ``ROUTE_ACLS``, and every row names a real route."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from starlette.routing import Mount, Route

from app.security.acl_routes import ROUTE_ACLS, match_route


def _routes(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path template) of every route, through included routers and mounts alike."""
    for route in routes:
        original = getattr(route, "original_router", None)  # FastAPI's included router
        if original is not None:
            yield from _routes(original.routes, prefix + route.include_context.prefix)
        elif isinstance(route, Mount):
            sub = getattr(route.app, "routes", None)
            if sub is None:  # a static or raw ASGI mount: one row for everything under it
                yield ("GET", prefix + route.path + "/{path:path}")
            else:
                yield from _routes(sub, prefix + route.path)
        elif isinstance(route, Route) or hasattr(route, "methods"):
            for method in sorted(set(route.methods or ()) - {"HEAD"}):
                yield (method, prefix + route.path)
        else:
            raise AssertionError(f"a route of a kind the table does not know: {route!r}")


def _app_routes(settings: Any) -> set[tuple[str, str]]:
    from app.main import create_app

    return set(_routes(create_app(settings).router.routes))


def test_every_route_has_a_row(settings: Any) -> None:
    missing = sorted(_app_routes(settings) - set(ROUTE_ACLS))
    assert not missing, (
        "routes without a row in ROUTE_ACLS (app/security/acl_routes.py); add one per route, naming "
        "the operations it needs (OPEN for none):\n" + "\n".join(f"  {m} {p}" for m, p in missing)
    )


def test_every_row_names_a_route(settings: Any) -> None:
    stale = sorted(set(ROUTE_ACLS) - _app_routes(settings))
    assert not stale, "rows of ROUTE_ACLS without a route:\n" + "\n".join(f"  {m} {p}" for m, p in stale)


def test_requests_find_their_row() -> None:
    found = match_route("GET", "/internal/v1/replication/orders/readiness")
    assert found is not None and found.template == "/internal/v1/replication/{topic}/readiness"
    found = match_route("POST", "/v1/topics/a.b/partitions/3/records")
    assert found is not None and found.params == {"topic": "a.b", "partition": "3"}
    head = match_route("HEAD", "/v1/topics/a")
    assert head is not None and head.template == "/v1/topics/{topic}"
    assert match_route("GET", "/v1/nothing-here") is None
    assert match_route("PUT", "/v1/topics/a") is None
