"""Which credentials a client sends: an API key, a bearer token, or HTTP Basic, resolved once.

- ``api_key=`` (or ``$TIDELOG_API_KEY`` when no credential is given at all) is sent as
  ``Authorization: Bearer <key>``, the broker's API-key scheme (``tlk_<id>_<secret>``);
- ``bearer_token=`` (or its short name ``token=``) is a bearer token too (a JWT from an OIDC
  provider), sent the same way;
- ``basic=(username, password)``, or ``username=`` with ``password=``, is HTTP Basic;
- ``auth=`` takes any ``httpx.Auth`` (or a ``(username, password)`` tuple) for anything else.

At most one of them: two are refused with ``ValueError`` rather than one silently winning. The header
goes with every request of the client, to whichever broker of the cluster it is routed or redirected
to (brokers share one credential store), and with its SSE streams. Credentials never go in a query
string, and ``repr`` of the auth object does not show them.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import httpx

__all__ = ["API_KEY_ENV", "BearerAuth", "resolve_auth"]

#: The environment variable an API key is read from when no credential is passed.
API_KEY_ENV = "TIDELOG_API_KEY"


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` on every request (an API key or a JWT)."""

    def __init__(self, token: str) -> None:
        if not token or any(c in token for c in "\r\n"):
            raise ValueError("a bearer token must be a non-empty single line")
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(<hidden>)"


def resolve_auth(
    *,
    api_key: str | None = None,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
    basic: tuple[str, str] | None = None,
    bearer_token: str | None = None,
    environ: dict[str, str] | None = None,
) -> httpx.Auth | None:
    """Return the one ``httpx.Auth`` the given credentials describe, or None for anonymous requests.

    ``environ`` (default ``os.environ``) supplies ``TIDELOG_API_KEY`` when nothing else is given.
    """
    if basic is not None:
        if username is not None or password is not None:
            raise ValueError("pass one kind of credential, not basic and username")
        if not (isinstance(basic, tuple) and len(basic) == 2):
            raise ValueError("basic= is a (username, password) tuple")
        username, password = basic
    if bearer_token is not None:
        if token is not None:
            raise ValueError("pass one kind of credential, not token and bearer_token")
        token = bearer_token
    if (username is None) != (password is None):
        raise ValueError("HTTP Basic needs both username= and password=")
    given = [
        name
        for name, value in (("api_key", api_key), ("token", token), ("username", username), ("auth", auth))
        if value is not None
    ]
    if len(given) > 1:
        raise ValueError(f"pass one kind of credential, not {' and '.join(given)}")
    if api_key is not None:
        return BearerAuth(api_key)
    if token is not None:
        return BearerAuth(token)
    if username is not None and password is not None:
        return httpx.BasicAuth(username, password)
    if isinstance(auth, tuple):
        return httpx.BasicAuth(*auth)
    if auth is not None:
        return auth
    from_env = (os.environ if environ is None else environ).get(API_KEY_ENV)
    return BearerAuth(from_env) if from_env else None
