"""Authentication over the API: API keys, HTTP Basic, sessions, refusals, throttling, revocation."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

PEPPER = "p1:" + "s" * 40


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Cheap argon2 parameters: the tests check behaviour, not the hash's cost.
    return {"auth_enabled": True, "auth_pepper": PEPPER, "password_time_cost": 1,
            "password_memory_cost_kib": 64, "auth_failure_limit": 5}


@pytest.fixture
def admin_key(client: TestClient) -> str:
    issued = client.app.state.credential_admin.create_key(principal="User:admin", super_user=True)
    return str(issued.key)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _problem(answer: Any, status: int, code: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    assert body["error_code"] == code
    return body


def test_no_credential_is_a_401_with_www_authenticate(client: TestClient) -> None:
    answer = client.get("/v1/topics")
    _problem(answer, 401, 40101)
    assert "Bearer" in answer.headers["www-authenticate"] and "Basic" in answer.headers["www-authenticate"]


def test_health_docs_and_console_files_stay_public(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/ui/config.json").json()["auth_enabled"] is True
    _problem(client.get("/metrics"), 401, 40101)  # auth_public_metrics is off by default


def test_an_api_key_authenticates_as_its_principal(client: TestClient, admin_key: str) -> None:
    me = client.get("/v1/whoami", headers=_bearer(admin_key)).json()
    assert me == {"principal": "User:admin", "auth_method": "api_key", "super_user": True}
    assert client.post("/v1/topics", json={"name": "t"}, headers=_bearer(admin_key)).status_code == 201


def test_keys_are_created_listed_and_revoked(client: TestClient, admin_key: str) -> None:
    created = client.post("/v1/keys", json={"principal": "User:app", "description": "orders"},
                          headers=_bearer(admin_key))
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    key_id = created.json()["key_id"]
    assert key.startswith(f"tlk_{key_id}_") and len(key_id) == 16
    listed = client.get("/v1/keys", headers=_bearer(admin_key)).json()["keys"]
    assert {k["key_id"] for k in listed} >= {key_id}
    assert all("key" not in k and "secret_hash" not in k for k in listed)  # the secret is shown once
    assert client.get("/v1/whoami", headers=_bearer(key)).json()["principal"] == "User:app"
    revoked = client.delete(f"/v1/keys/{key_id}", headers=_bearer(admin_key))
    assert revoked.status_code == 200 and revoked.json()["revoked_at_ms"] is not None
    _problem(client.get("/v1/whoami", headers=_bearer(key)), 401, 40102)  # at once, cache or not
    _problem(client.delete("/v1/keys/0123456789abcdef", headers=_bearer(admin_key)), 404, 40420)


def test_a_wrong_secret_or_unknown_id_is_refused(client: TestClient, admin_key: str) -> None:
    key_id = admin_key.split("_")[1]
    _problem(client.get("/v1/whoami", headers=_bearer(f"tlk_{key_id}_wrong")), 401, 40102)
    _problem(client.get("/v1/whoami", headers=_bearer("tlk_0000000000000000_x")), 401, 40102)
    _problem(client.get("/v1/whoami", headers={"Authorization": "Digest abc"}), 401, 40102)


def test_an_expired_key_is_refused(client: TestClient) -> None:
    admin = client.app.state.credential_admin
    issued = admin.create_key(principal="User:brief", expires_at_ms=int(time.time() * 1000) + 1500)
    assert client.get("/v1/whoami", headers=_bearer(issued.key)).status_code == 200  # now cached
    time.sleep(1.6)
    _problem(client.get("/v1/whoami", headers=_bearer(issued.key)), 401, 40102)


def test_credentials_in_the_query_string_are_refused(client: TestClient, admin_key: str) -> None:
    body = _problem(client.get("/v1/topics", params={"api_key": admin_key}), 400, 40001)
    assert admin_key not in body["detail"]
    _problem(client.get("/v1/topics", params={"access_token": "x"}), 400, 40001)


def test_repeated_failures_are_slowed_not_locked_out(client: TestClient, admin_key: str) -> None:
    for _ in range(5):
        _problem(client.get("/v1/whoami", headers=_bearer("tlk_0000000000000000_x")), 401, 40102)
    slowed = client.get("/v1/whoami", headers=_bearer(admin_key))  # even a good key waits
    _problem(slowed, 429, 42910)
    assert 1 <= int(slowed.headers["retry-after"]) <= 60
    throttle = client.app.state.authenticator.throttle
    throttle._failures.clear()  # the window passing, without waiting a minute
    assert client.get("/v1/whoami", headers=_bearer(admin_key)).status_code == 200


def test_users_sign_in_with_basic_and_lose_access_when_altered(client: TestClient, admin_key: str) -> None:
    created = client.post("/v1/users", json={"name": "alice", "password": "correct horse"},
                          headers=_bearer(admin_key))
    assert created.status_code == 201, created.text
    assert "password" not in created.json() and created.json()["mechanism"] == "argon2id"
    _problem(client.post("/v1/users", json={"name": "alice", "password": "another one"},
                         headers=_bearer(admin_key)), 409, 40920)
    me = client.get("/v1/whoami", headers=_basic("alice", "correct horse")).json()
    assert me["principal"] == "User:alice" and me["auth_method"] == "password"
    _problem(client.get("/v1/whoami", headers=_basic("alice", "wrong horse")), 401, 40102)
    _problem(client.get("/v1/whoami", headers=_basic("nobody", "correct horse")), 401, 40102)
    altered = client.put("/v1/users/alice", json={"password": "battery staple"}, headers=_bearer(admin_key))
    assert altered.status_code == 200
    _problem(client.get("/v1/whoami", headers=_basic("alice", "correct horse")), 401, 40102)
    assert client.get("/v1/whoami", headers=_basic("alice", "battery staple")).status_code == 200
    assert client.delete("/v1/users/alice", headers=_bearer(admin_key)).status_code == 204
    _problem(client.get("/v1/whoami", headers=_basic("alice", "battery staple")), 401, 40102)
    _problem(client.post("/v1/users", json={"name": "bob", "password": "short"},
                         headers=_bearer(admin_key)), 422, 42204)


def test_a_hash_with_old_parameters_is_rehashed_on_sign_in(client: TestClient) -> None:
    from argon2 import PasswordHasher

    from app.catalog import auth as auth_catalog

    catalog = client.app.state.catalog
    old = PasswordHasher(time_cost=2, memory_cost=128).hash("old parameters")
    with catalog.begin() as session:
        auth_catalog.create_user(session, name="carol", password_hash=old, now_ms=0)
    assert client.get("/v1/whoami", headers=_basic("carol", "old parameters")).status_code == 200
    with catalog.read() as session:
        stored = auth_catalog.get_user(session, name="carol")
    assert stored is not None and stored.password_hash != old and "t=1" in stored.password_hash


def test_a_session_cookie_signs_in_the_console(client: TestClient, admin_key: str) -> None:
    client.post("/v1/users", json={"name": "dora", "password": "explorer map"}, headers=_bearer(admin_key))
    signed_in = client.post("/v1/sessions", json={"username": "dora", "password": "explorer map"})
    assert signed_in.status_code == 201, signed_in.text
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Secure" not in cookie  # plain HTTP here; Secure under TLS
    me = client.get("/v1/whoami").json()
    assert me["principal"] == "User:dora" and me["auth_method"] == "session"
    origin = {"Origin": "http://testserver"}
    assert client.post("/v1/topics", json={"name": "from-console"}, headers=origin).status_code == 201
    _problem(client.post("/v1/topics", json={"name": "forged"}, headers={"Origin": "https://evil.example"}),
             403, 40390)
    _problem(client.post("/v1/topics", json={"name": "no-origin"}), 403, 40390)
    assert client.delete("/v1/sessions", headers=origin).status_code == 204
    stolen = signed_in.cookies.get("tidelog_session")
    assert stolen
    client.cookies.clear()
    _problem(client.get("/v1/whoami", headers={"Cookie": f"tidelog_session={stolen}"}), 401, 40102)


def test_a_session_from_an_api_key_and_bad_logins(client: TestClient, admin_key: str) -> None:
    assert client.post("/v1/sessions", json={"api_key": admin_key}).status_code == 201
    assert client.get("/v1/whoami").json()["super_user"] is True
    client.cookies.clear()
    _problem(client.post("/v1/sessions", json={"api_key": "tlk_0000000000000000_x"}), 401, 40102)
    _problem(client.post("/v1/sessions", json={"username": "x", "password": "y", "api_key": "z"}), 422, 42204)


def test_authentication_off_is_anonymous(tmp_path: Any) -> None:
    from app.config import Settings
    from app.main import create_app

    with TestClient(create_app(Settings(data_dir=tmp_path / "d"))) as anonymous:
        me = anonymous.get("/v1/whoami").json()
        assert me == {"principal": "User:ANONYMOUS", "auth_method": "anonymous", "super_user": False}
        assert anonymous.get("/v1/topics").status_code == 200
        assert anonymous.get("/ui/config.json").json()["auth_enabled"] is False


def test_a_session_from_a_key_ends_no_later_than_the_key(client: TestClient) -> None:
    admin = client.app.state.credential_admin
    key_expiry = int(time.time() * 1000) + 1500
    issued = admin.create_key(principal="User:brief", expires_at_ms=key_expiry)
    signed_in = client.post("/v1/sessions", json={"api_key": issued.key})
    assert signed_in.status_code == 201, signed_in.text
    assert signed_in.json()["expires_at_ms"] == key_expiry
    assert client.get("/v1/whoami").json()["auth_method"] == "session"
    cookie = signed_in.cookies.get("tidelog_session")
    client.cookies.clear()
    time.sleep(1.6)
    # Even a client that keeps the cookie past its Max-Age is refused by the server.
    _problem(client.get("/v1/whoami", headers={"Cookie": f"tidelog_session={cookie}"}), 401, 40102)
