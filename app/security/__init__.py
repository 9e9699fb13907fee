"""Security: who is calling (authentication), what they may do (ACLs), how much (quotas).

The seam every route uses, FastAPI and raw ASGI alike, is the principal that authentication leaves in
the ASGI scope (:func:`principal_of`); the authorizer decides over that principal and a resource.
"""

from app.security.principal import ANONYMOUS, SCOPE_KEY, Principal, principal_of

__all__ = ["ANONYMOUS", "SCOPE_KEY", "Principal", "principal_of"]
