"""The credential formats the broker issues: API keys and session tokens, and how they are stored.

An API key is ``tlk_<id>_<secret>``: ``<id>`` is 16 lowercase hex characters (the row's public key,
shown in listings), ``<secret>`` everything after the second ``_``, from
``secrets.token_urlsafe(32)`` (256 random bits, so it needs no slow hash). The catalog keeps
HMAC-SHA256(pepper, secret) and the pepper's id; verifying is a lookup by id and one
``hmac.compare_digest``, with a compare against a dummy digest when the id is unknown, so the
answer's timing does not tell which ids exist.

A session token (the console's cookie) is ``tls_<secret>``, stored as HMAC(pepper, token).
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Final, NamedTuple

from app.security.authn.pepper import Pepper

__all__ = [
    "API_KEY_PREFIX",
    "SESSION_PREFIX",
    "ParsedApiKey",
    "api_key_digest",
    "new_api_key",
    "new_session_token",
    "parse_api_key",
    "secret_matches",
    "session_digest",
]

API_KEY_PREFIX: Final = "tlk_"
SESSION_PREFIX: Final = "tls_"
_ID = re.compile(r"[0-9a-f]{16}")
_KEY_PURPOSE: Final = b"tidelog api key"
_SESSION_PURPOSE: Final = b"tidelog session"
_DUMMY: Final = bytes(32)


class ParsedApiKey(NamedTuple):
    key_id: str
    secret: str


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: (the full key to show once, its id, its secret)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"{API_KEY_PREFIX}{key_id}_{secret}", key_id, secret


def parse_api_key(token: str) -> ParsedApiKey | None:
    """``(id, secret)`` of a token in the API-key format, or None for any other token."""
    if not token.startswith(API_KEY_PREFIX):
        return None
    key_id, sep, secret = token[len(API_KEY_PREFIX) :].partition("_")
    if not sep or not secret or not _ID.fullmatch(key_id):
        return None
    return ParsedApiKey(key_id, secret)


def api_key_digest(pepper: Pepper, secret: str) -> bytes:
    return pepper.mac(_KEY_PURPOSE, secret.encode())


def secret_matches(pepper: Pepper, secret: str, stored: bytes | None) -> bool:
    """Whether ``secret`` hashes to ``stored``; with no row, the same work against a dummy, then False."""
    if stored is None:
        hmac.compare_digest(api_key_digest(pepper, secret), _DUMMY)
        return False
    return hmac.compare_digest(api_key_digest(pepper, secret), stored)


def new_session_token() -> str:
    return SESSION_PREFIX + secrets.token_urlsafe(32)


def session_digest(pepper: Pepper, token: str) -> bytes:
    return pepper.mac(_SESSION_PURPOSE, token.encode())
