"""JWT bearer tokens from an OIDC provider (Kafka's KIP-768 ``sasl.oauthbearer.*`` settings).

A token is verified with PyJWT against a static PEM public key (``oauthbearer_public_key_file``) or
the provider's JWKS (``oauthbearer_jwks_endpoint_url``). The accepted algorithms are fixed in the
settings and asymmetric only, so ``alg: none`` and an HS256 token "signed" with the public key are
refused before any key is tried. ``exp`` is required, ``nbf`` honoured, both with a leeway of
``oauthbearer_clock_skew_seconds`` (at most 300); ``aud`` and ``iss`` are checked when configured.
The principal is ``User:<the oauthbearer_sub_claim_name claim>``.

The JWKS is fetched when first needed and again when a token names a ``kid`` it lacks, at most once
per ``oauthbearer_jwks_endpoint_refresh_ms`` (so a flood of tokens with made-up ``kid`` values
costs the provider one request per interval); callers run ``verify`` in a worker thread, never on
the event loop, since a fetch blocks.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import httpx
import jwt
from jwt import PyJWK

from app.config import Settings

__all__ = ["ASYMMETRIC_ALGORITHMS", "JwtError", "JwtVerifier", "check_algorithms", "looks_like_jwt"]

ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class JwtError(Exception):
    """A token that is not accepted; the message says why, without the token."""


def check_algorithms(text: str) -> tuple[str, ...]:
    """The configured algorithm list, refusing ``none``, HMAC and unknown names (``ValueError``)."""
    algorithms = tuple(a.strip() for a in text.split(",") if a.strip())
    if not algorithms:
        raise ValueError("oauthbearer_algorithms is empty")
    for name in algorithms:
        if name not in ASYMMETRIC_ALGORITHMS:
            raise ValueError(
                f"oauthbearer_algorithms: {name!r} is not accepted; use asymmetric algorithms only "
                f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))})"
            )
    return algorithms


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


class JwtVerifier:
    def __init__(
        self,
        settings: Settings,
        *,
        fetch: Callable[[str], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.algorithms = list(check_algorithms(settings.oauthbearer_algorithms))
        self.audience = settings.oauthbearer_expected_audience
        self.issuer = settings.oauthbearer_expected_issuer
        self.claim = settings.oauthbearer_sub_claim_name
        self.leeway = settings.oauthbearer_clock_skew_seconds
        self.jwks_url = settings.oauthbearer_jwks_endpoint_url
        self.refresh_s = settings.oauthbearer_jwks_endpoint_refresh_ms / 1000
        self._static_key: Any = None
        if settings.oauthbearer_public_key_file is not None:
            pem = settings.oauthbearer_public_key_file.read_bytes()
            self._static_key = jwt.algorithms.get_default_algorithms()[self.algorithms[0]].prepare_key(pem)
        self._fetch = fetch or _fetch_json
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._static_key is not None or self.jwks_url is not None

    def verify(self, token: str) -> tuple[str, float]:
        """``(principal name, exp as epoch seconds)`` of a valid token, else ``JwtError``. Blocking."""
        if not self.enabled:
            raise JwtError("this broker accepts no JWTs")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise JwtError("the bearer token is neither an API key nor a JWT") from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise JwtError(f"JWT algorithm {algorithm!r} is not accepted")
        key = self._static_key if self._static_key is not None else self._jwks_key(header.get("kid"))
        options: dict[str, Any] = {"require": ["exp"], "verify_aud": self.audience is not None}
        try:
            claims = jwt.decode(
                token, key, algorithms=self.algorithms, audience=self.audience, issuer=self.issuer,
                leeway=self.leeway, options=options,  # type: ignore[arg-type]
            )
        except jwt.ExpiredSignatureError:
            raise JwtError("the JWT has expired") from None
        except jwt.ImmatureSignatureError:
            raise JwtError("the JWT is not valid yet (nbf)") from None
        except jwt.InvalidAudienceError:
            raise JwtError("the JWT is for another audience") from None
        except jwt.InvalidIssuerError:
            raise JwtError("the JWT is from another issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise JwtError(f"the JWT has no {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            raise JwtError(f"the JWT is not valid: {type(exc).__name__}") from None
        subject = claims.get(self.claim)
        if not isinstance(subject, str) or not subject:
            raise JwtError(f"the JWT has no {self.claim!r} claim")
        return f"User:{subject}", float(claims["exp"])

    def _jwks_key(self, kid: object) -> Any:
        if not isinstance(kid, str):
            raise JwtError("the JWT names no key (kid)")
        with self._lock:
            key = self._keys.get(kid)
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self.refresh_s
            if key is None and stale:
                self._fetched_at = now  # even a failed fetch waits out the interval
                assert self.jwks_url is not None
                try:
                    document = self._fetch(self.jwks_url)
                    self._keys = _parse_jwks(document)
                except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWTError) as exc:
                    raise JwtError(f"the JWKS could not be fetched: {type(exc).__name__}") from None
                key = self._keys.get(kid)
            if key is None:
                raise JwtError("the JWT's key (kid) is not in the issuer's JWKS")
            return key


def _parse_jwks(document: dict[str, Any]) -> dict[str, PyJWK]:
    keys: dict[str, PyJWK] = {}
    for entry in document["keys"]:
        kid = entry.get("kid")
        if isinstance(kid, str) and entry.get("use", "sig") == "sig":
            try:
                keys[kid] = PyJWK(entry)
            except jwt.PyJWTError:
                continue  # a key type PyJWT cannot use: skip it, keep the others
    return keys


def _fetch_json(url: str) -> dict[str, Any]:
    response = httpx.get(url, timeout=10.0)
    response.raise_for_status()
    document = json.loads(response.content)
    if not isinstance(document, dict):
        raise ValueError("a JWKS is a JSON object")
    return document
