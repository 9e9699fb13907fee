"""The principal a request runs as: Kafka's ``KafkaPrincipal`` (``User:<name>``), with how it was proven.

Authentication resolves every request to one :class:`Principal` before any route runs and stores it
in the ASGI scope under :data:`SCOPE_KEY`; a request that reaches a route without one (authentication
off, or a route outside the authenticated app such as a test's bare router) runs as
:data:`ANONYMOUS`, exactly as Kafka's PLAINTEXT listener does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = ["ANONYMOUS", "SCOPE_KEY", "AuthMethod", "Principal", "principal_of"]

#: How a principal was proven; audit records and metrics carry it.
AuthMethod = Literal["anonymous", "api_key", "password", "jwt", "mtls", "session", "inter_broker"]

#: The ASGI scope key under which authentication leaves the request's principal.
SCOPE_KEY: Final = "tidelog.principal"


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller: ``name`` is ``User:<name>``, the form ACL bindings use.

    ``super_user`` is set for a credential issued as a super user's (``tidelog keys create --super``,
    the key a first public start generates) and for the inter-broker principal; the authorizer
    allows such a principal everything, as Kafka's ``super.users``.
    """

    name: str
    auth_method: AuthMethod = "anonymous"
    super_user: bool = False

    @property
    def user(self) -> str:
        """The name after ``User:``."""
        return self.name.partition(":")[2]


ANONYMOUS: Final = Principal("User:ANONYMOUS", "anonymous")


def principal_of(scope: Mapping[str, Any]) -> Principal:
    """Gives the principal authentication stored in ``scope``, or :data:`ANONYMOUS`."""
    principal = scope.get(SCOPE_KEY)
    return principal if isinstance(principal, Principal) else ANONYMOUS
