"""The broker-wide ASGI middleware that leaves every request's principal in its scope.

For each HTTP request: a credential in the query string is refused (400); with authentication off
the principal is ``User:ANONYMOUS``; with it on, public paths (``/healthz``, ``/readyz``, the docs
and the console's files, ``POST /v1/sessions``, as configured) pass without one, every other request
must prove a principal (401 problem+json with ``WWW-Authenticate``), an address that failed too often
lately is answered 429 with ``Retry-After``, and a cookie-authenticated unsafe request must come
from the broker's own origin or a configured one (403, CSRF). The ``Authorization`` header is never
logged, neither here nor in the answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.error_codes import ErrorCode
from app.errors import problem_response
from app.limits import client_of
from app.security.authn.authenticator import AuthenticationError, Authenticator
from app.security.authn.scheme import CredentialFormatError, credential_of, query_has_credential
from app.security.principal import ANONYMOUS, SCOPE_KEY

__all__ = [
    "WWW_AUTHENTICATE",
    "AuthenticationMiddleware",
    "allowed_origins",
    "csrf_refusal",
    "public_paths",
    "throttled",
    "unauthenticated",
]

WWW_AUTHENTICATE: Final = 'Bearer realm="tidelog", Basic realm="tidelog", charset="UTF-8"'
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_DOC_PATHS: Final = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
LOGIN_PATH: Final = "/v1/sessions"


def public_paths(settings: Settings) -> tuple[frozenset[str], tuple[str, ...]]:
    """(exact paths, path prefixes) that answer without a credential when authentication is on."""
    exact: set[str] = set()
    prefixes: list[str] = []
    if settings.auth_public_health:
        exact |= {"/healthz", "/readyz"}
    if settings.auth_public_metrics:
        exact.add("/metrics")
    if settings.auth_public_docs:
        exact |= set(_DOC_PATHS) | {"/ui"}
        prefixes.append("/ui/")
    return frozenset(exact), tuple(prefixes)


def allowed_origins(settings: Settings) -> frozenset[str]:
    return frozenset(
        o.strip().rstrip("/")
        for o in settings.cors_allow_origins.split(",")
        if o.strip() and o.strip() != "*"
    )


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.enabled = settings.auth_enabled
        self.exact, self.prefixes = public_paths(settings)
        self.origins = allowed_origins(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name = query_has_credential(scope.get("query_string", b""))
        if name is not None:
            response = problem_response(
                ErrorCode.INVALID_REQUEST,
                f"credentials are not accepted in the query string ({name!r}); send an Authorization header",
            )
            await response(scope, receive, send)
            return
        if not self.enabled or self._public(scope):
            # A principal an outer layer already proved (a test harness wrapping the app) is kept.
            scope.setdefault(SCOPE_KEY, ANONYMOUS)
            await self.app(scope, receive, send)
            return
        authenticator: Authenticator | None = getattr(scope["app"].state, "authenticator", None)
        if authenticator is None:
            await problem_response(ErrorCode.NOT_READY, "the broker is starting up")(scope, receive, send)
            return
        address = client_of(scope)
        throttle = authenticator.throttle
        wait = throttle.retry_after_s(address)
        if wait:
            await throttled(wait)(scope, receive, send)
            return
        try:
            principal = await authenticator.authenticate(credential_of(scope))
        except CredentialFormatError as exc:
            throttle.failed(address)
            await unauthenticated(ErrorCode.AUTHENTICATION_FAILED, str(exc))(scope, receive, send)
            return
        except AuthenticationError as exc:
            if exc.code is ErrorCode.AUTHENTICATION_FAILED:
                throttle.failed(address)
            await unauthenticated(exc.code, exc.detail)(scope, receive, send)
            return
        if principal.auth_method == "session" and scope["method"] not in _SAFE_METHODS:
            refusal = self._csrf_refusal(scope)
            if refusal is not None:
                await problem_response(ErrorCode.CSRF_CHECK_FAILED, refusal)(scope, receive, send)
                return
        scope[SCOPE_KEY] = principal
        await self.app(scope, receive, send)

    def _public(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if path in self.exact or path.startswith(self.prefixes):
            return True
        return path == LOGIN_PATH and scope["method"] == "POST"

    def _csrf_refusal(self, scope: Scope) -> str | None:
        """Why a cookie-authenticated unsafe request is refused (another origin), or None."""
        return csrf_refusal(scope, self.origins)


def csrf_refusal(scope: Scope, allowed: frozenset[str]) -> str | None:
    """None when the request comes from the broker's own origin or an allowed one (Origin, else
    Sec-Fetch-Site); else why not. OWASP's "verifying origin with standard headers"."""
    headers = dict(_lower_headers(scope.get("headers", ())))
    origin = headers.get("origin")
    if origin is not None and origin != "null":
        if origin.rstrip("/") in allowed or origin.rstrip("/") == _own_origin(scope, headers):
            return None
        return f"a cookie-authenticated {scope['method']} from origin {origin} is refused (CSRF)"
    site = headers.get("sec-fetch-site")
    if site in ("same-origin", "none"):
        return None
    return f"a cookie-authenticated {scope['method']} needs an Origin header of this broker (CSRF)"


def _own_origin(scope: Scope, headers: dict[str, str]) -> str | None:
    host = headers.get("host")
    if host is None:
        return None
    return f"{scope.get('scheme', 'http')}://{host}"


def _lower_headers(raw: Iterable[tuple[bytes, bytes]]) -> Iterable[tuple[str, str]]:
    for name, value in raw:
        yield name.decode("latin-1").lower(), value.decode("latin-1")


def unauthenticated(code: ErrorCode, detail: str) -> Response:
    """The 401 answer, with the schemes the broker takes in ``WWW-Authenticate``."""
    return problem_response(code, detail, headers={"WWW-Authenticate": WWW_AUTHENTICATE})


def throttled(wait_s: int) -> Response:
    """The 429 answer to an address that failed too often lately."""
    return problem_response(
        ErrorCode.TOO_MANY_AUTHENTICATION_FAILURES,
        f"too many failed authentications from this address; retry in {wait_s} s",
        retry_after_s=wait_s,
    )
