"""CORS at the HTTP level: off by default, preflights answered for allowed origins only, the allowed
origin echoed on normal and error answers, never ``*`` with credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.cors import CorsPolicy
from app.main import create_app

ALLOWED = "http://localhost:3000"
PREFLIGHT = {"Origin": ALLOWED, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type"}


def _client(tmp_path: Path, **settings: Any) -> Iterator[TestClient]:
    app = create_app(Settings(data_dir=tmp_path / "data", **settings))
    with TestClient(app) as client:
        yield client


@pytest.fixture
def off(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path)


@pytest.fixture
def on(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path, cors_allow_origins=f"{ALLOWED}, https://app.example.com")


def test_off_by_default_no_header_and_no_preflight(off: TestClient) -> None:
    answer = off.options("/v1/topics", headers=PREFLIGHT)
    assert answer.status_code == 405
    assert "access-control-allow-origin" not in answer.headers
    answer = off.get("/v1/topics", headers={"Origin": ALLOWED})
    assert answer.status_code == 200
    assert not [h for h in answer.headers if h.startswith("access-control-")]


def test_preflight_is_answered_for_an_allowed_origin(on: TestClient) -> None:
    answer = on.options("/v1/topics/orders/records", headers=PREFLIGHT)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "content-type" in answer.headers["access-control-allow-headers"].lower()
    assert answer.headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in answer.headers


def test_preflight_of_another_origin_method_or_header_is_refused(on: TestClient) -> None:
    for headers in (
        {**PREFLIGHT, "Origin": "http://evil.example"},
        {**PREFLIGHT, "Access-Control-Request-Method": "TRACE"},
        {**PREFLIGHT, "Access-Control-Request-Headers": "x-secret"},
    ):
        answer = on.options("/v1/topics", headers=headers)
        assert answer.status_code == 400, headers
        assert answer.headers.get("access-control-allow-origin") != "http://evil.example"


def test_simple_and_error_answers_carry_the_origin(on: TestClient) -> None:
    answer = on.get("/v1/topics", headers={"Origin": ALLOWED})
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert "Retry-After" in answer.headers["access-control-expose-headers"]
    missing = on.get("/v1/topics/nope", headers={"Origin": ALLOWED})
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.headers["access-control-allow-origin"] == ALLOWED
    other = on.get("/v1/topics", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_wildcard_answers_star_without_credentials(tmp_path: Path) -> None:
    for client in _client(tmp_path, cors_allow_origins="*", cors_allow_methods="GET"):
        answer = client.get("/v1/topics", headers={"Origin": "http://anything.example"})
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in answer.headers
        preflight = client.options("/v1/topics", headers=PREFLIGHT)  # POST is not allowed here
        assert preflight.status_code == 400


def test_a_policy_never_combines_star_with_credentials() -> None:
    with pytest.raises(ValueError, match="credentials"):
        CorsPolicy(allow_origins=("*",), allow_methods=("GET",), allow_headers=(), allow_credentials=True)
    settings = Settings(cors_allow_origins="*")
    assert CorsPolicy.from_settings(settings).allow_credentials is False


def test_environment_variables_configure_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDELOG_CORS_ALLOW_ORIGINS", "http://a.example,http://b.example")
    monkeypatch.setenv("TIDELOG_CORS_ALLOW_HEADERS", "Content-Type")
    policy = CorsPolicy.from_settings(Settings())
    assert policy.allow_origins == ("http://a.example", "http://b.example")
    assert policy.allow_headers == ("Content-Type",)
