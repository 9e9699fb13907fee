"""The console's sign-in: ``POST /v1/sessions`` (a password or an API key) sets one session cookie,
``DELETE /v1/sessions`` ends it on the server; ``GET /v1/whoami`` says who the caller is.

The cookie is HttpOnly, ``Secure`` when the request came over TLS, ``SameSite`` as
``session_cookie_samesite`` (Strict by default), Path ``/``. Its value is a random token stored only
as HMAC(pepper, token); ending the session deletes the row and bumps the revocation clock, so a
copied cookie is refused on every broker within one poll interval. Unsafe methods authenticated by
the cookie must come from the broker's own origin (app/security/authn/middleware.py).
"""

from __future__ import annotations

import functools
import time

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.error_codes import ErrorCode
from app.errors import error_responses, problem_response
from app.limits import client_of
from app.security.authn.admin import CredentialAdmin
from app.security.authn.authenticator import AuthenticationError, Authenticator
from app.security.authn.credentials import parse_api_key
from app.security.authn.middleware import allowed_origins, csrf_refusal, throttled, unauthenticated
from app.security.authn.scheme import SESSION_COOKIE, ApiKey, SessionCookie, credential_of
from app.security.principal import principal_of

__all__ = ["router"]

router = APIRouter(tags=["sessions"])


class LoginRequest(BaseModel):
    """A password user's name and password, or an API key."""

    model_config = ConfigDict(extra="forbid")

    username: str | None = Field(None, max_length=200)
    password: str | None = Field(None, max_length=1024)
    api_key: str | None = Field(None, max_length=200)


class SessionModel(BaseModel):
    principal: str
    auth_method: str
    expires_at_ms: int


class WhoAmIModel(BaseModel):
    principal: str
    auth_method: str = Field(
        ..., description="anonymous, api_key, password, jwt, mtls, session, inter_broker"
    )
    super_user: bool


@router.post(
    "/v1/sessions",
    response_model=SessionModel,
    status_code=201,
    responses=error_responses(
        ErrorCode.AUTHENTICATION_FAILED,
        ErrorCode.CSRF_CHECK_FAILED,
        ErrorCode.TOO_MANY_AUTHENTICATION_FAILURES,
    ),
    summary="Sign in (sets the session cookie)",
)
async def create_session(request: Request, body: LoginRequest, response: Response) -> SessionModel | Response:
    """Checks the password or API key and sets the ``tidelog_session`` cookie for later requests."""
    authenticator: Authenticator = request.app.state.authenticator
    admin: CredentialAdmin = request.app.state.credential_admin
    settings = request.app.state.settings
    if request.headers.get("origin") is not None:
        refusal = csrf_refusal(request.scope, allowed_origins(settings))
        if refusal is not None:
            return problem_response(ErrorCode.CSRF_CHECK_FAILED, refusal)
    address = client_of(request.scope)
    wait = authenticator.throttle.retry_after_s(address)
    if wait:
        return throttled(wait)
    key_expires_at_s: float | None = None
    try:
        if body.api_key is not None and body.username is None and body.password is None:
            parsed = parse_api_key(body.api_key)
            if parsed is None:
                raise AuthenticationError(ErrorCode.AUTHENTICATION_FAILED, "not an API key (tlk_…)")
            principal, key_expires_at_s = await authenticator.verify_api_key(ApiKey(parsed, body.api_key))
        elif body.username is not None and body.password is not None and body.api_key is None:
            principal = await authenticator.verify_password(body.username, body.password)
        else:
            return problem_response(
                ErrorCode.INVALID_PARAMETER, "send either username and password, or api_key"
            )
    except AuthenticationError as exc:
        authenticator.throttle.failed(address)
        return unauthenticated(exc.code, exc.detail)
    not_after_ms = None if key_expires_at_s is None else int(key_expires_at_s * 1000)
    token, expires_at_ms = await run_in_threadpool(
        functools.partial(admin.open_session, principal, max_age_s=settings.session_max_age_s,
                          not_after_ms=not_after_ms)
    )
    max_age_s = max(1, (expires_at_ms - int(time.time() * 1000)) // 1000)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age_s, path="/", httponly=True,
        secure=request.url.scheme == "https", samesite=settings.session_cookie_samesite,
    )
    return SessionModel(
        principal=principal.name, auth_method=principal.auth_method, expires_at_ms=expires_at_ms
    )


@router.delete("/v1/sessions", status_code=204, responses=error_responses(), summary="Sign out")
async def delete_session(request: Request) -> Response:
    """Ends the caller's session on the server (the cookie is refused from now on) and clears it."""
    credential = credential_of(request.scope) if "authorization" not in request.headers else None
    if isinstance(credential, SessionCookie):
        admin: CredentialAdmin = request.app.state.credential_admin
        await run_in_threadpool(admin.close_session, credential.token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, secure=request.url.scheme == "https",
                           samesite=request.app.state.settings.session_cookie_samesite)
    return response


@router.get("/v1/whoami", response_model=WhoAmIModel, responses=error_responses(), summary="Who am I")
async def whoami(request: Request) -> WhoAmIModel:
    """The principal this request was authenticated as (``User:ANONYMOUS`` with authentication off)."""
    principal = principal_of(request.scope)
    return WhoAmIModel(principal=principal.name, auth_method=principal.auth_method,
                       super_user=principal.super_user)
