"""Authentication: who is calling. Every request resolves to a ``Principal`` before any route runs.

    scheme.py         what the request presents (pure parsing of the scope: header, cookie, peer cert)
    authenticator.py  credential → principal (catalog lookups in threads, cache, revocation poll)
    middleware.py     the broker-wide ASGI middleware: 401/429/403 answers, public paths
    credentials.py    API key and session token formats, their HMAC under the pepper
    pepper.py         the server pepper (file or environment, never the catalog), rotation
    passwords.py      argon2id hashing for HTTP Basic and the console's login
    jwt.py            JWT/OIDC bearer tokens (KIP-768 settings), JWKS refresh
    cache.py          verified credentials, keyed by HMAC(pepper, credential)
    throttle.py       repeated failures from one address slowed with 429
    bootstrap.py      the first super-user key, written into the catalog from the broker's host
"""

from app.security.authn.authenticator import AuthenticationError, Authenticator
from app.security.authn.middleware import AuthenticationMiddleware

__all__ = ["AuthenticationError", "AuthenticationMiddleware", "Authenticator"]
