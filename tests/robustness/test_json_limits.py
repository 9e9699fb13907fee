"""Record JSON every reader can read: bounded nesting (42221), numbers in range (42222), NDJSON that
always ends with a summary or an error line, and the accepted edge values round-tripped by the client."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

import tidelog

JSON = {"content-type": "application/json"}
NDJSON = {"content-type": "application/x-ndjson"}


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _produce_raw(client: Any, topic: str, body: bytes) -> Any:
    return client.post(f"/v1/topics/{topic}/records", content=body, headers=JSON)


@pytest.fixture
def topic(client: Any) -> str:
    assert client.post("/v1/topics", json={"name": "limits", "partitions": 1}).status_code == 201
    return "limits"


@pytest.mark.parametrize("depth", [65, 300, 2_000, 100_000])
def test_a_value_nested_deeper_than_the_limit_is_422_42221(client: Any, topic: str, depth: int) -> None:
    body = b'{"records":[{"value":1},{"value":' + _nested(depth) + b"}]}"
    answer = _produce_raw(client, topic, body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["error_code"] == 42221
    if depth < 1000:  # beyond every parser's own limit the request body as a whole is named
        assert problem["field"] == "records[1].value"
    assert client.get(f"/v1/topics/{topic}/partitions/0/offsets").json()["high_watermark"] == 0


def test_nesting_up_to_the_limit_is_stored_and_read_back(client: Any, topic: str) -> None:
    value = orjson.loads(b'{"a":' + _nested(63) + b"}")  # 64 levels: the object and 63 arrays
    answer = client.post(f"/v1/topics/{topic}/records", json={"records": [{"value": value}]})
    assert answer.status_code == 200, answer.text
    fetched = client.get(f"/v1/topics/{topic}/partitions/0/records", params={"offset": 0}).json()
    assert fetched["records"][0]["value"] == value


def test_a_deep_json_key_and_a_deep_string_are_told_apart(client: Any, topic: str) -> None:
    deep_key = b'{"key_format":"json","records":[{"key":{"k":' + _nested(80) + b'},"value":1}]}'
    answer = _produce_raw(client, topic, deep_key)
    assert answer.status_code == 422 and answer.json()["error_code"] == 42221
    assert answer.json()["field"] == "records[0].key"
    # Brackets inside a string are text, not nesting.
    text = "[" * 500
    fine = client.post(f"/v1/topics/{topic}/records", json={"records": [{"value": {"s": text}}]})
    assert fine.status_code == 200, fine.text


def test_the_nesting_limit_is_a_setting(client: Any, topic: str, app: Any) -> None:
    app.state.settings = app.state.settings.model_copy(update={"max_json_depth": 3})
    assert _produce_raw(client, topic, b'{"records":[{"value":[[[1]]]}]}').status_code == 200
    answer = _produce_raw(client, topic, b'{"records":[{"value":[[[[1]]]]}]}')
    assert answer.status_code == 422 and answer.json()["limit"] == 3


@pytest.mark.parametrize(
    "number",
    [
        b"9" * 10_000,
        str(2**64).encode(),
        str(-(2**63) - 1).encode(),
        b"1e400",
        b"-1.5e309",
        b"1" + b"0" * 400 + b".5",
    ],
)
def test_numbers_no_reader_can_hold_are_422_42222(client: Any, topic: str, number: bytes) -> None:
    for body in (
        b'{"records":[{"value":' + number + b"}]}",
        b'{"records":[{"value":{"n":[' + number + b"]}}]}",
        b'{"records":[{"value":1,"headers":[]},{"value":' + number + b"}]}",  # the exact parser's path
    ):
        answer = _produce_raw(client, topic, body)
        assert answer.status_code == 422, (number[:30], answer.text)
        problem = answer.json()
        assert problem["error_code"] == 42222
        assert problem["field"].startswith("records[")
    assert client.get(f"/v1/topics/{topic}/partitions/0/offsets").json()["high_watermark"] == 0


def test_digits_in_strings_are_not_numbers(client: Any, topic: str) -> None:
    value = {"id": "9" * 10_000, "e": "1e400"}
    answer = client.post(f"/v1/topics/{topic}/records", json={"records": [{"value": value}]})
    assert answer.status_code == 200, answer.text


def test_ndjson_refuses_only_the_deep_or_out_of_range_line_and_ends_with_a_summary(
    client: Any, topic: str
) -> None:
    lines = [
        b'{"value":1}',
        b'{"value":' + _nested(5_000) + b"}",
        b'{"value":' + b"9" * 10_000 + b"}",
        b'{"value":' + _nested(100) + b"}",
        b'{"value":2}',
    ]
    answer = client.post(f"/v1/topics/{topic}/records", content=b"\n".join(lines) + b"\n", headers=NDJSON)
    assert answer.status_code == 200
    out = [orjson.loads(line) for line in answer.content.splitlines()]
    assert [o.get("offset") for o in out[:5]] == [0, None, None, None, 1]
    assert [o.get("error_code") for o in out[:5]] == [None, 42221, 42222, 42221, None]
    assert out[-1] == {"summary": {"lines": 5, "produced": 2, "failed": 3}}
    assert len(out) == 6


def test_ndjson_that_fails_mid_way_ends_with_an_error_line(client: Any, topic: str, app: Any) -> None:
    broker = app.state.broker
    real_produce = broker.produce
    calls = 0

    async def failing_produce(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("/srv/secret/path/00000000.log exploded")
        return await real_produce(*args, **kwargs)

    broker.produce = failing_produce
    try:
        body = b"".join(orjson.dumps({"value": i}) + b"\n" for i in range(2_500))  # chunks of 1,000
        answer = client.post(f"/v1/topics/{topic}/records", content=body, headers=NDJSON)
    finally:
        broker.produce = real_produce
    out = [orjson.loads(line) for line in answer.content.splitlines()]
    assert len(out) == 1_001
    assert all("offset" in o for o in out[:1_000])
    last = out[-1]
    assert last["error"]["error_code"] == 50001
    assert last["error"]["produced"] == 1_000
    assert "/srv" not in answer.text


EDGE_VALUES: list[Any] = [
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    12345678901234567890,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    5e-324,
    1e300,
    {"nested": [[[[{"deep": 2**63 - 1}]]]]},
    "9" * 10_000,
]


def test_accepted_edge_values_round_trip_through_the_client(client: Any, topic: str) -> None:
    transport = client._transport  # the TestClient's in-process transport
    with tidelog.Client("http://testserver", transport=transport) as tl:
        result = tl.produce(topic, [{"value": v} for v in EDGE_VALUES], partition=0)
        assert result.ok, result
        fetched = tl.fetch(topic, 0, 0)
        assert [r.value for r in fetched.records] == EDGE_VALUES
        with pytest.raises(tidelog.NumberOutOfRangeError):
            tl.produce(topic, [2**64], partition=0)
        with pytest.raises(tidelog.ValueTooDeepError):
            tl.produce(topic, [orjson.loads(_nested(65))], partition=0)
