"""The first super user's key, and the safe default of a broker started on a public address.

``create_super_key`` writes a super user's API key straight into the catalog from the broker's host
(``tidelog keys create --super``, as ``kafka-storage format --add-scram`` does in KIP-900): whoever
can read the broker's data directory or catalog is already its administrator, and no unauthenticated
HTTP call is ever needed to get the first credential.

``secure_public_start`` is Elasticsearch 8's secure first start: a broker bound to anything but
loopback with no authentication configured turns authentication on, and on its first such start
writes a generated super user's key to ``<data_dir>/superuser.key`` (mode 0600) and prints it once.
``--insecure-allow-public`` is the explicit opt-out.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any, Final

from app.config import Settings

__all__ = [
    "SUPER_KEY_FILE",
    "SUPER_PRINCIPAL",
    "create_super_key",
    "inter_broker_headers",
    "inter_broker_verify",
    "secure_public_start",
]

SUPER_KEY_FILE: Final = "superuser.key"
SUPER_PRINCIPAL: Final = "User:admin"


def create_super_key(
    *,
    principal: str = SUPER_PRINCIPAL,
    description: str = "super user (created on the broker's host)",
    expires_at_ms: int | None = None,
    settings: Settings | None = None,
    **overrides: Any,
) -> str:
    """A new super user's key, written into the catalog of ``settings`` (default: ``TIDELOG_*``)."""
    from app.catalog import Catalog
    from app.security.authn.admin import CredentialAdmin
    from app.security.authn.authenticator import Authenticator

    if settings is None:
        settings = Settings(**{name: value for name, value in overrides.items() if value is not None})
    catalog = Catalog(settings.effective_catalog_url)
    try:
        catalog.migrate()
        admin = CredentialAdmin(Authenticator(settings, catalog))
        issued = admin.create_key(
            principal=principal, description=description, expires_at_ms=expires_at_ms, super_user=True
        )
        return issued.key
    finally:
        catalog.close()


def secure_public_start(settings: Settings) -> tuple[Settings, str | None]:
    """``settings`` with authentication on when the bind is public and nothing else says so, and the
    generated key when this start made one (to print once); otherwise ``(settings, None)``."""
    if settings.auth_enabled or settings.is_loopback or settings.insecure_allow_public:
        return settings, None
    if settings.cluster and settings.auth_pepper is None and settings.auth_pepper_file is None:
        raise ValueError(
            f"{settings.host} is not a loopback address, so authentication is turned on, and a cluster "
            "needs the same pepper on every broker: set TIDELOG_AUTH_PEPPER or --auth-pepper-file "
            "(or --insecure-allow-public to serve without authentication)"
        )
    settings = settings.model_copy(update={"auth_enabled": True})
    path = Path(settings.data_dir) / SUPER_KEY_FILE
    if path.exists():
        return settings, None
    key = create_super_key(settings=settings, description="super user (generated at the first public start)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
        file.flush()
        os.fsync(file.fileno())
    return settings, key


def inter_broker_verify(settings: Settings) -> ssl.SSLContext | bool:
    """What a broker's own HTTP clients verify the others with: with TLS, the configured CA bundle
    (or the system's), presenting this broker's certificate, so mTLS holds between brokers too."""
    if not settings.tls:
        return True
    context = ssl.create_default_context(cafile=str(settings.ssl_ca_certs) if settings.ssl_ca_certs else None)
    assert settings.ssl_certfile is not None and settings.ssl_keyfile is not None
    context.load_cert_chain(str(settings.ssl_certfile), str(settings.ssl_keyfile))
    return context


def inter_broker_headers(settings: Settings) -> dict[str, str]:
    """The headers a broker's own HTTP clients (replica fetcher, produce forwarder) send to the others:
    the inter-broker principal's token when authentication is on, nothing otherwise."""
    if not settings.auth_enabled:
        return {}
    from app.security.authn.authenticator import inter_broker_token
    from app.security.authn.pepper import load_peppers

    token = inter_broker_token(load_peppers(settings)[0], settings.inter_broker_principal)
    return {"Authorization": f"Bearer {token}"}
