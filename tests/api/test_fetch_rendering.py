"""The fetch answer's spliced JSON text says exactly what the record dicts say."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from app.broker.formats import Format, pack_attributes, render_records, render_records_json
from storage import Record, TimestampType

formats = st.sampled_from(list(Format))
json_texts = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
).map(orjson.dumps)


@st.composite
def records(draw: st.DrawFn) -> Record:
    key_format, value_format = draw(formats), draw(formats)

    def data(fmt: Format) -> bytes | None:
        if draw(st.booleans()):
            return None
        if fmt is Format.JSON:
            return draw(json_texts)
        if fmt is Format.STRING:
            return draw(st.text()).encode("utf-8", "surrogatepass")
        return draw(st.binary(max_size=20))

    headers = draw(st.lists(st.tuples(st.text(max_size=4), st.none() | st.binary(max_size=6)), max_size=2))
    return Record(
        offset=draw(st.integers(0, 2**62)),
        timestamp=draw(st.integers(0, 2**62)),
        key=data(key_format),
        value=data(value_format),
        headers=tuple(headers),
        attributes=pack_attributes(key_format, value_format),
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(records(), max_size=6),
    st.sampled_from(list(TimestampType)),
    st.booleans(),
    st.none() | formats,
)
def test_spliced_json_equals_the_record_dicts(
    batch: list[Record], timestamp_type: TimestampType, binary_headers: bool, asked: Format | None
) -> None:
    types = [timestamp_type] * len(batch)
    kwargs = {"header_format_binary": binary_headers}
    if asked is Format.BINARY:  # every record can be shown as base64, whatever it was produced as
        kwargs.update(key_format=asked, value_format=asked)  # type: ignore[arg-type]
    dicts = render_records("t-1.x", 7, batch, types, **kwargs)  # type: ignore[arg-type]
    texts = render_records_json("t-1.x", 7, batch, types, **kwargs)  # type: ignore[arg-type]
    assert [orjson.loads(t) for t in texts] == [orjson.loads(orjson.dumps(d)) for d in dicts]
    assert all(b"\n" not in t for t in texts)  # one line each (NDJSON, SSE data lines)
