"""TLS and mTLS with certificates from ``trustme``: HTTPS, client certificates required and mapped
to principals (KIP-371 rules), the session cookie ``Secure`` under TLS."""

from __future__ import annotations

import contextlib
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from app.security.authn.tls import parse_rules, principal_of_certificate, subject_dn
from tests.broker_process import BrokerProcess

CERT = {"subject": ((("countryName", "DE"),), (("organizationName", "Acme"),),
                    (("organizationalUnitName", "Eng"),), (("commonName", "Alice"),))}


def test_the_subject_is_written_most_specific_first() -> None:
    assert subject_dn(CERT) == "CN=Alice,OU=Eng,O=Acme,C=DE"


@pytest.mark.parametrize(
    ("rules", "principal"),
    [
        ("DEFAULT", "User:CN=Alice,OU=Eng,O=Acme,C=DE"),
        ("RULE:^CN=([^,]+),OU=([^,]+).*$/$1@$2/L, DEFAULT", "User:alice@eng"),
        ("RULE:^CN=([^,]+).*$/$1/U", "User:ALICE"),
        ("RULE:^CN=Bob.*$/bob/, RULE:^CN=(.*?),.*$/$1/", "User:Alice"),
        ("RULE:^CN=Bob.*$/bob/", None),
    ],
)
def test_mapping_rules(rules: str, principal: str | None) -> None:
    assert principal_of_certificate(CERT, parse_rules(rules)) == principal


def test_malformed_rules_are_refused() -> None:
    for rules in ("RULE:abc", "NOPE", "RULE:(/x/"):
        with pytest.raises(ValueError):
            parse_rules(rules)


class TlsBroker(BrokerProcess):
    """A broker on HTTPS; readiness is polled with the client certificate the test gives."""

    def __init__(self, *args: Any, verify: ssl.SSLContext, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.verify = verify

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        with httpx.Client(timeout=1.0, verify=self.verify) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"broker exited before it was ready:\n{self.log_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/readyz").status_code == 200:
                        return
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"broker not ready:\n{self.log_text()}")


@pytest.mark.e2e
def test_mtls_maps_the_client_certificate_to_a_principal(tmp_path: Path) -> None:
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    server.private_key_pem.write_to_path(tmp_path / "server.key")
    server.cert_chain_pems[0].write_to_path(tmp_path / "server.pem")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    alice = ca.issue_cert("alice@example.com", common_name="alice", organization_unit_name="eng")
    alice_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    alice.configure_cert(alice_ctx)
    anonymous_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    broker = TlsBroker(
        tmp_path / "data", verify=alice_ctx,
        settings={"auth_enabled": "true", "ssl_certfile": tmp_path / "server.pem",
                  "ssl_keyfile": tmp_path / "server.key", "ssl_ca_certs": tmp_path / "ca.pem",
                  "ssl_principal_mapping_rules": "RULE:^CN=([^,]+),OU=([^,]+).*$/$1-$2/, DEFAULT"},
    ).start()
    try:
        with httpx.Client(base_url=broker.url, verify=alice_ctx) as client:
            me = client.get("/v1/whoami").json()
            assert me["principal"] == "User:alice-eng" and me["auth_method"] == "mtls"
            assert client.post("/v1/topics", json={"name": "over-tls"}).status_code == 201
            signed_in = client.post("/v1/sessions", json={"api_key": "tlk_0000000000000000_x"})
            assert signed_in.status_code == 401
        with httpx.Client(base_url=broker.url, verify=anonymous_ctx) as bare, pytest.raises(httpx.HTTPError):
            bare.get("/healthz")  # no client certificate: the handshake itself is refused
        plain_url = f"http://127.0.0.1:{broker.port}"
        with httpx.Client(base_url=plain_url) as plain, pytest.raises(httpx.HTTPError):
            plain.get("/healthz").raise_for_status()  # no plain HTTP beside TLS
    finally:
        broker.stop()


@pytest.mark.e2e
def test_the_session_cookie_is_secure_under_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    server = ca.issue_cert("localhost")
    server.private_key_pem.write_to_path(tmp_path / "server.key")
    server.cert_chain_pems[0].write_to_path(tmp_path / "server.pem")
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    broker = TlsBroker(
        tmp_path / "data", verify=ctx,
        settings={"auth_enabled": "true", "ssl_certfile": tmp_path / "server.pem",
                  "ssl_keyfile": tmp_path / "server.key", "auth_pepper": "p1:" + "t" * 40,
                  "password_time_cost": 1, "password_memory_cost_kib": 64},
    ).start()
    try:
        from app.config import Settings
        from app.security.authn.bootstrap import create_super_key

        key = create_super_key(settings=Settings(data_dir=tmp_path / "data", auth_pepper="p1:" + "t" * 40))
        with httpx.Client(base_url=broker.url, verify=ctx) as client:
            assert client.get("/v1/whoami").status_code == 401
            signed_in = client.post("/v1/sessions", json={"api_key": key})
            assert signed_in.status_code == 201, signed_in.text
            cookie = signed_in.headers["set-cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie
    finally:
        broker.stop()
