"""What a request presents as its credential: pure parsing of the ASGI scope, no I/O.

Tried in the order of docs/security.md: ``Authorization: Bearer tlk_…`` (an API key), ``Basic``
(a password user), ``Bearer`` anything else (a JWT), and only without ``Authorization`` the
console's session cookie, then the TLS peer certificate's principal. Credentials in the query string
are refused outright: access logs and proxies print query strings.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

from app.security.authn.credentials import ParsedApiKey, parse_api_key

__all__ = [
    "INTER_BROKER_PREFIX",
    "PEER_PRINCIPAL_KEY",
    "QUERY_CREDENTIAL_NAMES",
    "SESSION_COOKIE",
    "ApiKey",
    "Basic",
    "BearerJwt",
    "Credential",
    "CredentialFormatError",
    "InterBroker",
    "PeerCertificate",
    "SessionCookie",
    "credential_of",
    "query_has_credential",
]

#: The console's session cookie (HttpOnly; set by POST /v1/sessions).
SESSION_COOKIE: Final = "tidelog_session"
#: Names of query parameters that would carry a credential; a request using one is refused.
QUERY_CREDENTIAL_NAMES: Final = frozenset({"api_key", "apikey", "access_token", "token", "password"})
#: The bearer token brokers of a cluster present to each other (derived from the shared pepper).
INTER_BROKER_PREFIX: Final = "tlb_"
#: Where a TLS listener leaves the peer certificate's principal in the scope (app/security/authn/tls.py).
PEER_PRINCIPAL_KEY: Final = "tidelog.peer_principal"


class CredentialFormatError(Exception):
    """An ``Authorization`` header that is present but cannot be read."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    key: ParsedApiKey
    raw: str


@dataclass(frozen=True, slots=True)
class Basic:
    username: str
    password: str
    raw: str


@dataclass(frozen=True, slots=True)
class BearerJwt:
    token: str


@dataclass(frozen=True, slots=True)
class InterBroker:
    token: str


@dataclass(frozen=True, slots=True)
class SessionCookie:
    token: str


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    principal: str


Credential = ApiKey | Basic | BearerJwt | InterBroker | SessionCookie | PeerCertificate


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def credential_of(scope: Mapping[str, Any]) -> Credential | None:
    """The credential the request presents (None: none at all); ``CredentialFormatError`` if unreadable."""
    headers = scope.get("headers", ())
    authorization = _header(headers, b"authorization")
    if authorization is not None:
        return _parse_authorization(authorization)
    cookie = _header(headers, b"cookie")
    if cookie is not None:
        token = _cookie_value(cookie.decode("latin-1"), SESSION_COOKIE)
        if token:
            return SessionCookie(token)
    peer = scope.get(PEER_PRINCIPAL_KEY)
    if isinstance(peer, str):
        return PeerCertificate(peer)
    return None


def _parse_authorization(value: bytes) -> Credential:
    try:
        text = value.decode("ascii").strip()
    except UnicodeDecodeError:
        raise CredentialFormatError("the Authorization header is not ASCII") from None
    scheme, _, rest = text.partition(" ")
    rest = rest.strip()
    if not rest:
        raise CredentialFormatError("the Authorization header has no credential after its scheme")
    scheme = scheme.lower()
    if scheme == "bearer":
        parsed = parse_api_key(rest)
        if parsed is not None:
            return ApiKey(parsed, rest)
        if rest.startswith(INTER_BROKER_PREFIX):
            return InterBroker(rest)
        return BearerJwt(rest)
    if scheme == "basic":
        try:
            decoded = base64.b64decode(rest, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialFormatError("the Basic credential is not base64 of UTF-8 user:password") from None
        username, sep, password = decoded.partition(":")
        if not sep or not username:
            raise CredentialFormatError("the Basic credential is not 'user:password'")
        return Basic(username, password, decoded)
    raise CredentialFormatError("unsupported Authorization scheme; use Bearer (API key or JWT) or Basic")


def _cookie_value(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"') or None
    return None


def query_has_credential(query_string: bytes) -> str | None:
    """The first credential-like parameter name in the query string, or None."""
    if not query_string:
        return None
    for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name.lower() in QUERY_CREDENTIAL_NAMES:
            return name
    return None
