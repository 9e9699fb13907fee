"""The client's sans-I/O core: credentials, and one call's retry and routing decisions, without a broker.

The shells (``Client``/``AsyncClient``) are checked against scripted brokers (``httpx.MockTransport``)
for what reaches the wire: the credential on every request, redirects included, and the same
decisions in both.
"""

from __future__ import annotations

import base64

import httpx
import pytest

from tidelog import AsyncClient, Client, ConnectError, OverloadedError, TimeoutError, UnknownTopicError
from tidelog._api import Call, fetch, produce
from tidelog._core.connection import CallState, RetryPolicy, Router, decode_answer
from tidelog._core.credentials import BearerAuth, resolve_auth
from tidelog._leaders import LeaderCache
from tidelog._records import encode_record

A, B = "http://a:1", "http://b:2"


def _header(auth: httpx.Auth | None) -> str | None:
    if auth is None:
        return None
    request = httpx.Request("GET", "http://x/")
    flow = auth.sync_auth_flow(request)
    header: str | None = next(flow).headers.get("Authorization")
    return header


def test_each_kind_of_credential_becomes_one_authorization_header() -> None:
    assert _header(resolve_auth(api_key="tlk_0123456789abcdef_s3cret", environ={})) == (
        "Bearer tlk_0123456789abcdef_s3cret"
    )
    assert _header(resolve_auth(token="eyJhbGciOi.x.y", environ={})) == "Bearer eyJhbGciOi.x.y"
    basic = "Basic " + base64.b64encode(b"alice:pw:with:colons").decode()
    assert _header(resolve_auth(username="alice", password="pw:with:colons", environ={})) == basic
    assert _header(resolve_auth(auth=("alice", "pw:with:colons"), environ={})) == basic
    assert _header(resolve_auth(basic=("alice", "pw:with:colons"), environ={})) == basic
    assert _header(resolve_auth(bearer_token="eyJ.a.b", environ={})) == "Bearer eyJ.a.b"
    custom = BearerAuth("t")
    assert resolve_auth(auth=custom, environ={}) is custom
    assert resolve_auth(environ={}) is None


def test_the_environment_key_is_used_only_when_nothing_is_given() -> None:
    env = {"TIDELOG_API_KEY": "tlk_from_env"}
    assert _header(resolve_auth(environ=env)) == "Bearer tlk_from_env"
    assert _header(resolve_auth(token="explicit", environ=env)) == "Bearer explicit"
    assert _header(resolve_auth(username="u", password="p", environ=env)).startswith("Basic ")  # type: ignore[union-attr]
    assert resolve_auth(environ={"TIDELOG_API_KEY": ""}) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_key": "k", "token": "t"},
        {"api_key": "k", "username": "u", "password": "p"},
        {"token": "t", "auth": ("u", "p")},
        {"username": "u"},
        {"password": "p"},
        {"api_key": ""},
        {"token": "two\r\nlines"},
        {"basic": ("u", "p"), "api_key": "k"},
        {"basic": ("u", "p"), "username": "u", "password": "p"},
        {"bearer_token": "t", "token": "t"},
        {"basic": ("only-one",)},
    ],
)
def test_ambiguous_or_malformed_credentials_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        resolve_auth(environ={}, **kwargs)  # type: ignore[arg-type]


def test_the_auth_object_does_not_show_the_secret() -> None:
    assert "s3cret" not in repr(BearerAuth("tlk_x_s3cret"))


OK = {"results": [{"partition": 0, "offset": 7, "timestamp": 1}]}


def _redirecting_broker(seen: list[tuple[str, str | None]]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("Authorization")))
        if request.url.host == "a" and request.url.path.endswith("/records"):
            location = B + request.url.raw_path.decode()
            body = {"status": 307, "error_code": 50304, "leader_id": 1, "leader_url": B, "detail": "x"}
            return httpx.Response(307, headers={"Location": location}, json=body)
        return httpx.Response(200, json=OK)

    return httpx.MockTransport(handler)


def test_the_credential_goes_with_every_request_and_redirect() -> None:
    seen: list[tuple[str, str | None]] = []
    with Client(A, transport=_redirecting_broker(seen), api_key="tlk_k_secret") as client:
        client.produce("t", ["v"], partition=0)
    assert seen == [("a", "Bearer tlk_k_secret"), ("b", "Bearer tlk_k_secret")]


async def test_the_async_client_sends_the_same_credential() -> None:
    seen: list[tuple[str, str | None]] = []
    async with AsyncClient(A, transport=_redirecting_broker(seen), token="jwt") as client:
        await client.produce("t", ["v"], partition=0)
    assert seen == [("a", "Bearer jwt"), ("b", "Bearer jwt")]


def test_a_client_reads_its_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDELOG_API_KEY", "tlk_env")
    seen: list[tuple[str, str | None]] = []
    with Client(B, transport=_redirecting_broker(seen)) as client:
        client.produce("t", ["v"], partition=0)
    assert seen == [("b", "Bearer tlk_env")]
    with pytest.raises(ValueError):
        Client(B, api_key="a", token="b")


# -- one call's decisions ----------------------------------------------------------------------


def _state(call: Call[object], attempts: int = 3) -> CallState:
    return CallState(call, Router(A, LeaderCache()), RetryPolicy(backoff_ms=100), attempts)


def _produce_call() -> Call[object]:
    record = encode_record(key=None, value="v", headers=None, timestamp=None, key_format="string",
                           value_format="json")  # fmt: skip
    return produce("t", [record], partition=0, acks="all", key_format="string", value_format="json",
                   idempotency_key=None, record_partitions=None)  # type: ignore[return-value]  # fmt: skip


def _fetch_call() -> Call[object]:
    return fetch("t", 0, 0, max_records=None, max_bytes=None, max_wait_ms=None, min_bytes=None,
                 key_format=None, value_format=None)  # type: ignore[return-value]  # fmt: skip


def test_a_connection_never_opened_is_retried_with_backoff_until_the_attempts_run_out() -> None:
    state = _state(_produce_call(), attempts=3)
    for _ in range(2):
        state.next_url()
        delay = state.failed(ConnectError("refused"))
        assert delay is not None and 0.05 <= delay <= 0.5
    state.next_url()
    assert state.failed(ConnectError("refused")) is None


def test_a_lost_answer_is_retried_only_for_a_request_safe_to_repeat() -> None:
    state = _state(_produce_call())
    state.next_url()
    assert state.failed(TimeoutError("lost")) is None  # a plain produce may have been appended
    reading = _state(_fetch_call())
    reading.next_url()
    assert reading.failed(TimeoutError("lost")) is not None


def test_a_retriable_answer_waits_its_retry_after_and_a_final_one_is_raised() -> None:
    state = _state(_produce_call())
    state.next_url()
    assert state.failed(OverloadedError("busy", status=503, retry_after=2.0)) == 2.0
    state.next_url()
    assert state.failed(UnknownTopicError("no such topic", status=404)) is None


def test_an_unreachable_bootstrap_broker_moves_the_next_attempt_to_another_alive_one() -> None:
    leaders = LeaderCache()
    leaders.update_brokers({"brokers": [{"broker_id": 0, "url": A, "state": "alive"},
                                        {"broker_id": 1, "url": B, "state": "alive"}]})  # fmt: skip
    state = CallState(_fetch_call(), Router(A, leaders), RetryPolicy(), 3)
    assert state.next_url().startswith(A)
    state.failed(ConnectError("refused"))
    assert state.next_url().startswith(B)


def test_refused_credentials_raise_their_own_errors_and_are_not_retried() -> None:
    import tidelog

    request = httpx.Request("GET", "http://a/x")
    for status, cls in ((401, tidelog.AuthenticationError), (403, tidelog.AuthorizationError)):
        with pytest.raises(cls) as caught:
            decode_answer(httpx.Response(status, json={"status": status, "detail": "no"}, request=request))
        assert not caught.value.retriable


def test_answers_are_decoded_or_raised_as_the_broker_error() -> None:
    request = httpx.Request("GET", "http://a/x")
    assert decode_answer(httpx.Response(200, json={"a": 1}, request=request)) == {"a": 1}
    assert decode_answer(httpx.Response(204, request=request)) is None
    problem = {"status": 404, "error_code": 40401, "detail": "no topic t", "title": "Unknown topic"}
    with pytest.raises(UnknownTopicError, match="no topic t"):
        decode_answer(httpx.Response(404, json=problem, request=request))
