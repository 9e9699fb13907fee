"""The pure parts of authentication: credential parsing, the key format, the pepper, cache, throttle."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.config import Settings
from app.security.authn.cache import CredentialCache
from app.security.authn.credentials import new_api_key, parse_api_key, secret_matches
from app.security.authn.pepper import PepperError, load_peppers, parse_peppers
from app.security.authn.scheme import (
    ApiKey,
    Basic,
    BearerJwt,
    CredentialFormatError,
    SessionCookie,
    credential_of,
    query_has_credential,
)
from app.security.authn.throttle import FailureThrottle
from app.security.principal import Principal


def _scope(*headers: tuple[str, str]) -> dict[str, object]:
    return {"headers": [(k.lower().encode(), v.encode()) for k, v in headers]}


def test_a_new_key_has_the_documented_shape_and_parses_back() -> None:
    key, key_id, secret = new_api_key()
    assert key == f"tlk_{key_id}_{secret}" and len(key_id) == 16 and len(secret) == 43
    assert parse_api_key(key) == (key_id, secret)


@given(st.text(max_size=80))
def test_parsing_any_token_never_raises(token: str) -> None:
    parsed = parse_api_key(token)
    if parsed is not None:
        assert token == f"tlk_{parsed.key_id}_{parsed.secret}"


def test_the_secret_may_contain_underscores() -> None:
    assert parse_api_key("tlk_0123456789abcdef_a_b_c") == ("0123456789abcdef", "a_b_c")
    assert parse_api_key("tlk_0123456789ABCDEF_x") is None  # the id is lowercase hex
    assert parse_api_key("tlk_0123_x") is None


def test_headers_are_read_in_the_documented_order() -> None:
    key, _, _ = new_api_key()
    assert isinstance(credential_of(_scope(("Authorization", f"Bearer {key}"))), ApiKey)
    assert isinstance(credential_of(_scope(("Authorization", "Bearer a.b.c"))), BearerJwt)
    basic = credential_of(_scope(("Authorization", "Basic " + base64.b64encode(b"u:p:w").decode())))
    assert isinstance(basic, Basic) and (basic.username, basic.password) == ("u", "p:w")
    cookie = credential_of(_scope(("Cookie", "a=1; tidelog_session=tls_x")))
    assert cookie == SessionCookie("tls_x")
    both = credential_of(_scope(("Authorization", "Bearer a.b.c"), ("Cookie", "tidelog_session=tls_x")))
    assert isinstance(both, BearerJwt)  # a header wins over the cookie
    assert credential_of(_scope()) is None
    for bad in ("Basic !!!", "Bearer", "Negotiate abc", "Basic " + base64.b64encode(b"nocolon").decode()):
        with pytest.raises(CredentialFormatError):
            credential_of(_scope(("Authorization", bad)))


def test_credential_names_in_the_query_are_found() -> None:
    assert query_has_credential(b"offset=1&api_key=x") == "api_key"
    assert query_has_credential(b"ACCESS_TOKEN=x") == "ACCESS_TOKEN"
    assert query_has_credential(b"offset=1&max_wait_ms=0") is None


def test_peppers_parse_and_refuse_weak_secrets(tmp_path: Path) -> None:
    peppers = parse_peppers("new:" + "n" * 32 + "\nold:" + "o" * 32)
    assert [p.id for p in peppers] == ["new", "old"] and "nnnn" not in repr(peppers)
    for bad in ("", "x", "id:short", "a:" + "x" * 32 + ",a:" + "y" * 32):
        with pytest.raises(PepperError):
            parse_peppers(bad)
    generated = load_peppers(Settings(data_dir=tmp_path))
    assert (tmp_path / "auth.pepper").stat().st_mode & 0o777 == 0o600
    assert load_peppers(Settings(data_dir=tmp_path)) == generated  # the same on the next start


def test_a_key_made_under_an_old_pepper_still_verifies() -> None:
    from app.security.authn.credentials import api_key_digest

    old, new = parse_peppers("old:" + "o" * 32 + ",new:" + "n" * 32)
    stored = api_key_digest(old, "secret")
    assert secret_matches(old, "secret", stored) and not secret_matches(new, "secret", stored)
    assert not secret_matches(old, "secret", None)


def test_the_cache_holds_until_the_earlier_of_ttl_and_expiry() -> None:
    now = [100.0]
    cache = CredentialCache(ttl_s=60, clock=lambda: now[0])
    who = Principal("User:a", "api_key")
    cache.put(b"long", who)
    cache.put(b"short", who, expires_at_s=110.0)
    now[0] = 109.0
    assert cache.get(b"short") == who and cache.get(b"long") == who
    now[0] = 110.0
    assert cache.get(b"short") is None and cache.get(b"long") == who
    now[0] = 160.0
    assert cache.get(b"long") is None
    cache.put(b"x", who)
    cache.clear()
    assert cache.get(b"x") is None and len(cache) == 0


def test_failures_are_slowed_then_forgotten() -> None:
    now = [0.0]
    throttle = FailureThrottle(limit=3, window_s=10, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after_s("a") == 0
        throttle.failed("a")
        now[0] += 1
    assert throttle.retry_after_s("a") == 7  # the first failure (t=0) leaves the window at t=10
    assert throttle.retry_after_s("b") == 0  # per address
    now[0] = 10.5
    assert throttle.retry_after_s("a") == 0  # never a lockout
