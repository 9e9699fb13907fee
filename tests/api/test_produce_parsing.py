"""The produce body's fast parsing loop stores exactly what the careful per-record parser stores."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.broker.formats import Format, pack_attributes
from app.broker.produce import parse_produce_body, parse_record

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
records = st.fixed_dictionaries(
    {"value": json_values | st.text()},
    optional={
        "key": st.none() | st.text(max_size=8),
        "partition": st.none() | st.integers(0, 2**31 - 1),
        "timestamp": st.none() | st.integers(0, 2**63 - 1),
        "headers": st.just([])
        | st.lists(
            st.fixed_dictionaries({"key": st.text(max_size=4), "value": st.none() | st.text(max_size=4)}),
            max_size=2,
        ),
    },
)


@settings(max_examples=150, deadline=None)
@given(st.lists(records, min_size=1, max_size=10), st.sampled_from(["json", "string"]))
def test_fast_loop_matches_parse_record(raw: list[dict[str, Any]], value_format: str) -> None:
    if value_format == "string":
        raw = [
            {**r, "value": r["value"] if isinstance(r["value"], str) or r["value"] is None else "v"}
            for r in raw
        ]
    parsed = parse_produce_body({"records": raw, "value_format": value_format}, max_records=100, now_ms=7)
    fmt = Format.JSON if value_format == "json" else Format.STRING
    expected = [
        parse_record(
            r,
            f"records[{i}]",
            key_format=Format.STRING,
            value_format=fmt,
            header_binary=False,
            attributes=pack_attributes(Format.STRING, fmt),
            now_ms=7,
        )
        for i, r in enumerate(raw)
    ]
    assert [(r.key, r.value, tuple(r.headers), r.timestamp, r.attributes) for r in parsed.records] == [
        (e.key, e.value, tuple(e.headers), e.timestamp, e.attributes) for e, _ in expected
    ]
    assert parsed.partitions == [p for _, p in expected]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(records, min_size=1, max_size=10),
    st.sampled_from(["json", "string"]),
    st.sampled_from(["compact", "spaced"]),
)
def test_raw_body_parser_stores_the_same_records(
    raw: list[dict[str, Any]], value_format: str, style: str
) -> None:
    import json

    import orjson

    from app.broker.produce import parse_produce_json

    if value_format == "string":
        raw = [
            {**r, "value": r["value"] if isinstance(r["value"], str) or r["value"] is None else "v"}
            for r in raw
        ]
    document = {"records": raw, "value_format": value_format}
    body = orjson.dumps(document) if style == "compact" else json.dumps(document).encode()
    fast = parse_produce_json(body, max_records=100, now_ms=7)
    exact = parse_produce_body(orjson.loads(body), max_records=100, now_ms=7)

    def value_of(data: bytes | None) -> object:
        if data is None or value_format == "string":
            return data
        text = data.decode()
        assert "\n" not in text and ": " not in text.replace('": "', "")  # compact, one line
        return orjson.loads(data)

    assert [
        (r.key, value_of(r.value), tuple(r.headers), r.timestamp, r.attributes) for r in fast.records
    ] == [(r.key, value_of(r.value), tuple(r.headers), r.timestamp, r.attributes) for r in exact.records]
    assert fast.partitions == exact.partitions


def test_plain_bodies_take_the_fast_path_and_bad_ones_get_exact_errors() -> None:
    import orjson
    import pytest

    from app.broker.produce import _parse_fast, parse_produce_json
    from app.errors_base import InvalidRequestError

    body = orjson.dumps({"records": [{"key": "k", "value": {"a": [1, "x"]}, "timestamp": 5}]})
    parsed = _parse_fast(body, 10, now_ms=1)  # no fallback for what clients send every time
    assert parsed.records[0].value == b'{"a":[1,"x"]}' and parsed.records[0].key == b"k"
    with pytest.raises(InvalidRequestError, match=r"records\[1\] has unknown field"):
        parse_produce_json(b'{"records": [{"value": 1}, {"value": 2, "vaule": 3}]}', max_records=10, now_ms=1)
    with pytest.raises(InvalidRequestError, match="not valid UTF-8"):
        parse_produce_json(b'{"records": [{"value": "\xff"}]}', max_records=10, now_ms=1)
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        parse_produce_json(b'{"records": [{"value": "\\ud800"}]}', max_records=10, now_ms=1)


@settings(max_examples=100, deadline=None)
@given(records)
def test_ndjson_line_parser_matches_parse_record(raw: dict[str, Any]) -> None:
    import orjson

    from app.broker.produce import parse_record_json

    options: dict[str, Any] = {
        "key_format": Format.STRING,
        "value_format": Format.JSON,
        "header_binary": False,
        "attributes": pack_attributes(Format.STRING, Format.JSON),
        "now_ms": 3,
    }
    fast, fast_partition = parse_record_json(orjson.dumps(raw), "line 1", **options)
    exact, exact_partition = parse_record(raw, "line 1", **options)
    assert (fast.key, tuple(fast.headers), fast.timestamp, fast_partition) == (
        exact.key,
        tuple(exact.headers),
        exact.timestamp,
        exact_partition,
    )
    assert (None if fast.value is None else orjson.loads(fast.value)) == (
        None if exact.value is None else orjson.loads(exact.value)
    )
