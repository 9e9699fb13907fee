"""Topologies run through the test driver, checked against golden output and brute force."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tidelog.streams as ts
from tidelog.streams import JoinWindows, SessionWindows, SlidingWindows, TimeWindows, Window, Windowed
from tidelog.streams.testing import TopologyTestDriver


def wordcount() -> ts.App:
    app = ts.App("wordcount")
    (
        app.stream("text-input")
        .flat_map_values(lambda v: v.lower().split())
        .group_by(lambda key, word: word)
        .count(store="counts")
        .to_stream()
        .to("word-counts")
    )
    return app


def test_wordcount_golden_output() -> None:
    # The expected sequence of Kafka's WordCountDemo for these three lines.
    with TopologyTestDriver(wordcount()) as driver:
        text = driver.create_input_topic("text-input")
        out = driver.create_output_topic("word-counts")
        for line in ("Hello Kafka Streams", "All streams lead to Kafka", "Join Kafka Summit"):
            text.pipe_input(None, line)
        assert out.read_key_values() == [
            ("hello", 1),
            ("kafka", 1),
            ("streams", 1),
            ("all", 1),
            ("streams", 2),
            ("lead", 1),
            ("to", 1),
            ("kafka", 2),
            ("join", 1),
            ("kafka", 3),
            ("summit", 1),
        ]
        assert dict(driver.get_store("counts").all()) == {
            "hello": 1,
            "kafka": 3,
            "streams": 2,
            "all": 1,
            "lead": 1,
            "to": 1,
            "join": 1,
            "summit": 1,
        }


def test_topology_describes_its_subtopologies_and_internal_topics() -> None:
    text = wordcount().describe()
    assert "wordcount-counts-repartition" in text and "wordcount-counts-changelog" in text


def test_stateless_operators() -> None:
    app = ts.App("stateless")
    stream = app.stream("in")
    evens, odds = stream.filter(lambda k, v: v >= 0).branch(lambda k, v: v % 2 == 0, lambda k, v: True)
    evens.map_values(lambda v: v * 10).to("evens")
    odds.map(lambda k, v: (f"{k}!", -v)).peek(lambda k, v: seen.append(v)).to("odds")
    stream.filter_not(lambda k, v: v >= 0).select_key(lambda k, v: "neg").merge(
        stream.flat_map(lambda k, v: [(k, v)] * 2 if v == 3 else [])
    ).to("other")
    seen: list[int] = []
    with TopologyTestDriver(app) as driver:
        src = driver.create_input_topic("in")
        for k, v in [("a", 1), ("b", 2), ("c", -5), ("d", 3)]:
            src.pipe_input(k, v)
        assert driver.create_output_topic("evens").read_key_values() == [("b", 20)]
        assert driver.create_output_topic("odds").read_key_values() == [("a!", -1), ("d!", -3)]
        assert driver.create_output_topic("other").read_key_values() == [("neg", -5), ("d", 3), ("d", 3)]
        assert seen == [-1, -3]


# -- windows against brute force ----------------------------------------------------------------

events = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=0, max_value=200)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(
    events=events, size=st.integers(min_value=1, max_value=40), grace=st.integers(min_value=0, max_value=30)
)
def test_suppressed_tumbling_counts_equal_brute_force(
    events: list[tuple[str, int]], size: int, grace: int
) -> None:
    app = ts.App("tumbling")
    (
        app.stream("in")
        .group_by_key()
        .windowed_by(TimeWindows.of(size, grace_ms=grace))
        .count(store="c")
        .suppress()
        .to_stream()
        .to("out")
    )
    with TopologyTestDriver(app) as driver:
        src = driver.create_input_topic("in")
        for key, t in events:
            src.pipe_input(key, 1, t)
        out = driver.create_output_topic("out").read_key_values()
        late = driver.metrics().get("late-records", 0)
    # Brute force: stream time is the largest timestamp so far; a record for a closed window is late.
    stream_time, counts, brute_late = -1, Counter[tuple[str, Window]](), 0
    for key, t in events:
        stream_time = max(stream_time, t)
        window = Window(t - t % size, t - t % size + size)
        if stream_time >= window.end + grace:
            brute_late += 1
        else:
            counts[(key, window)] += 1
    final = {(k, w): c for (k, w), c in counts.items() if stream_time >= w.end + grace}
    assert len(out) == len(final), "exactly one result per closed (key, window)"
    assert {(k.key, k.window): v for k, v in out} == final
    assert [k.window.end for k, _ in out] == sorted(k.window.end for k, _ in out)
    assert late == brute_late


@settings(max_examples=60, deadline=None)
@given(events=events, data=st.data())
def test_hopping_counts_equal_brute_force(events: list[tuple[str, int]], data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=2, max_value=40))
    advance = data.draw(st.integers(min_value=1, max_value=size))
    grace = data.draw(st.integers(min_value=0, max_value=30))
    windows = TimeWindows.of(size, grace_ms=grace).advance_by(advance)
    app = ts.App("hopping")
    app.stream("in").group_by_key().windowed_by(windows).count(store="c").to_stream().to("out")
    with TopologyTestDriver(app) as driver:
        src = driver.create_input_topic("in")
        for key, t in events:
            src.pipe_input(key, 1, t)
        table = driver.create_output_topic("out").read_key_values_to_map()
    stream_time, counts = -1, Counter[tuple[str, Window]]()
    for key, t in events:
        stream_time = max(stream_time, t)
        for s in range(0, t + 1):
            if s % advance == 0 and s <= t < s + size and stream_time < s + size + grace:
                counts[(key, Window(s, s + size))] += 1
    assert {(k.key, k.window): v for k, v in table.items()} == dict(counts)


@settings(max_examples=60, deadline=None)
@given(
    events=events, gap=st.integers(min_value=1, max_value=20), grace=st.integers(min_value=0, max_value=30)
)
def test_session_counts_equal_brute_force(events: list[tuple[str, int]], gap: int, grace: int) -> None:
    app = ts.App("sessions")
    (
        app.stream("in")
        .group_by_key()
        .windowed_by(SessionWindows.with_inactivity_gap(gap, grace_ms=grace))
        .count(store="s")
        .to_stream()
        .to("out")
    )
    with TopologyTestDriver(app) as driver:
        src = driver.create_input_topic("in")
        for key, t in events:
            src.pipe_input(key, 1, t)
        table = driver.create_output_topic("out").read_key_values_to_map()
        late = driver.metrics().get("late-records", 0)
    accepted: dict[str, list[int]] = defaultdict(list)
    stream_time, brute_late = -1, 0
    for key, t in events:
        stream_time = max(stream_time, t)
        stamps = sorted([*accepted[key], t])
        sessions = _sessions(stamps, gap)
        mine = next(w for w in sessions if w.start <= t <= w.end)
        if stream_time > mine.end + grace:
            brute_late += 1
        else:
            accepted[key].append(t)
    expected = {}
    for key, stamps in accepted.items():
        for w in _sessions(sorted(stamps), gap):
            expected[(key, w)] = sum(1 for t in stamps if w.start <= t <= w.end)
    assert {(k.key, k.window): v for k, v in table.items()} == expected
    assert late == brute_late


def _sessions(stamps: list[int], gap: int) -> list[Window]:
    result: list[Window] = []
    for t in stamps:
        if result and t - result[-1].end <= gap:
            result[-1] = Window(result[-1].start, t)
        else:
            result.append(Window(t, t))
    return result


@settings(max_examples=60, deadline=None)
@given(events=events, d=st.integers(min_value=1, max_value=30), grace=st.integers(min_value=0, max_value=30))
def test_sliding_counts_equal_brute_force(events: list[tuple[str, int]], d: int, grace: int) -> None:
    app = ts.App("sliding")
    (
        app.stream("in")
        .group_by_key()
        .windowed_by(SlidingWindows.of(d, grace_ms=grace))
        .count(store="s")
        .to_stream()
        .to("out")
    )
    with TopologyTestDriver(app) as driver:
        src = driver.create_input_topic("in")
        for key, t in events:
            src.pipe_input(key, 1, t)
        table = driver.create_output_topic("out").read_key_values_to_map()
        late = driver.metrics().get("late-records", 0)
    accepted: dict[str, list[int]] = defaultdict(list)
    stream_time, brute_late = -1, 0
    for key, t in events:
        stream_time = max(stream_time, t)
        if stream_time > t + grace:
            brute_late += 1
        else:
            accepted[key].append(t)
    expected = {}
    for key, stamps in accepted.items():
        candidates = {Window(max(0, t - d), t) for t in stamps}
        candidates |= {
            Window(t + 1, t + 1 + d) for t in stamps if any(t + 1 <= u <= t + 1 + d for u in stamps)
        }
        for w in candidates:
            expected[(key, w)] = sum(1 for u in stamps if w.start <= u <= w.end)
    assert {(k.key, k.window): v for k, v in table.items()} == expected
    assert late == brute_late


# -- joins against brute force ------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["s", "t"]), st.sampled_from(["a", "b"]), st.integers(min_value=0, max_value=50)
        ),
        max_size=40,
    )
)
def test_stream_table_join_sees_the_table_as_of_the_record_time(ops: list[tuple[str, str, int]]) -> None:
    app = ts.App("st-join")
    table = app.table("t")
    app.stream("s").join(table, lambda sv, tv: [sv, tv]).to("out")
    with TopologyTestDriver(app) as driver:
        s, t = driver.create_input_topic("s"), driver.create_input_topic("t")
        expected = []
        versions: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for i, (side, key, stamp) in enumerate(ops):
            if side == "t":
                t.pipe_input(key, i, stamp)
                versions[key].append((stamp, i))
            else:
                s.pipe_input(key, i, stamp)
                known = [(ts_, v) for ts_, v in versions[key] if ts_ <= stamp]
                if known:
                    latest_ts = max(ts_ for ts_, _ in known)
                    expected.append((key, [i, [v for ts_, v in known if ts_ == latest_ts][-1]]))
        assert driver.create_output_topic("out").read_key_values() == expected


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["l", "r"]), st.sampled_from(["a", "b"]), st.integers(min_value=0, max_value=100)
        ),
        max_size=40,
    ),
    st.integers(min_value=0, max_value=20),
)
def test_stream_stream_join_pairs_every_record_within_the_window(
    ops: list[tuple[str, str, int]], d: int
) -> None:
    app = ts.App("ss-join")
    right = app.stream("r")
    app.stream("l").join(right, lambda lv, rv: [lv, rv], JoinWindows.of(d, grace_ms=1000)).to("out")
    with TopologyTestDriver(app) as driver:
        lt, rt = driver.create_input_topic("l"), driver.create_input_topic("r")
        lefts, rights = [], []
        for i, (side, key, stamp) in enumerate(ops):
            (lt if side == "l" else rt).pipe_input(key, i, stamp)
            (lefts if side == "l" else rights).append((key, i, stamp))
        got = sorted((k, tuple(v)) for k, v in driver.create_output_topic("out").read_key_values())
    expected = sorted(
        (k, (li, ri)) for k, li, lts in lefts for k2, ri, rts in rights if k == k2 and abs(lts - rts) <= d
    )
    assert got == expected


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["l", "r"]),
            st.sampled_from(["a", "b", "c"]),
            st.one_of(st.none(), st.integers(min_value=0, max_value=9)),
        ),
        max_size=40,
    )
)
def test_table_table_join_final_state(ops: list[tuple[str, str, int | None]]) -> None:
    app = ts.App("tt-join")
    left, right = app.table("l"), app.table("r")
    left.join(right, lambda a, b: a * 100 + b).to_stream().to("inner")
    left.left_join(right, lambda a, b: [a, b]).to_stream().to("left")
    with TopologyTestDriver(app) as driver:
        lt, rt = driver.create_input_topic("l"), driver.create_input_topic("r")
        lstate: dict[str, int] = {}
        rstate: dict[str, int] = {}
        for i, (side, key, value) in enumerate(ops):
            (lt if side == "l" else rt).pipe_input(key, value, i)
            state = lstate if side == "l" else rstate
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        inner = driver.create_output_topic("inner").read_key_values_to_map()
        leftj = driver.create_output_topic("left").read_key_values_to_map()
    assert inner == {k: lstate[k] * 100 + rstate[k] for k in lstate if k in rstate}
    assert leftj == {k: [lstate[k], rstate.get(k)] for k in lstate}


def test_left_stream_join_emits_unmatched_records_once_their_window_closed() -> None:
    app = ts.App("left-ss")
    right = app.stream("r")
    app.stream("l").left_join(right, lambda lv, rv: [lv, rv], JoinWindows.of(10, grace_ms=0)).to("out")
    with TopologyTestDriver(app) as driver:
        lt, rt = driver.create_input_topic("l"), driver.create_input_topic("r")
        out = driver.create_output_topic("out")
        lt.pipe_input("a", "x", 100)
        rt.pipe_input("b", "y", 105)
        assert out.read_key_values() == []  # not yet: a match may still come
        rt.pipe_input("a", "z", 108)
        assert out.read_key_values() == [("a", ["x", "z"])]
        lt.pipe_input("b", "w", 200)  # the right "b"@105 is outside its window: no match
        lt.pipe_input("c", "v", 201)
        assert out.read_key_values() == []
        rt.pipe_input("q", "q", 300)  # stream time 300 > 201 + 10: both windows closed unmatched
        assert out.read_key_values() == [("b", ["w", None]), ("c", ["v", None])]


def test_global_table_join_with_key_mapper() -> None:
    app = ts.App("global")
    users = app.global_table("users")
    app.stream("orders").join(
        users, lambda order, user: {"order": order, "user": user}, key_mapper=lambda key, order: order["user"]
    ).to("enriched")
    with TopologyTestDriver(app) as driver:
        driver.create_input_topic("users").pipe_input("u1", {"name": "Ada"}, 0)
        orders = driver.create_input_topic("orders")
        orders.pipe_input("o1", {"user": "u1"}, 5)
        orders.pipe_input("o2", {"user": "u2"}, 6)
        assert driver.create_output_topic("enriched").read_key_values() == [
            ("o1", {"order": {"user": "u1"}, "user": {"name": "Ada"}})
        ]


# -- processor API, punctuation, errors ---------------------------------------------------------


class Dedupe(ts.Processor):
    def init(self, context: ts.ProcessorContext) -> None:
        super().init(context)
        self.seen = context.get_store("seen")
        context.schedule(100, ts.PunctuationType.STREAM_TIME, self.tick)
        self.ticks: list[int] = []

    def tick(self, now: int) -> None:
        self.context.forward("tick", now)

    def process(self, record: ts.StreamRecord) -> None:
        if self.seen.get(record.key) is None:  # type: ignore[attr-defined]
            self.seen.put(record.key, True)  # type: ignore[attr-defined]
            self.context.forward(record.key, record.value)


def test_processor_api_with_a_store_and_stream_time_punctuation() -> None:
    app = ts.App("proc")
    app.stream("in").process(Dedupe, stores=["seen"]).to("out")
    with TopologyTestDriver(app) as driver:
        src = driver.create_input_topic("in")
        for key, t in [("a", 0), ("a", 50), ("b", 120), ("c", 150), ("b", 260)]:
            src.pipe_input(key, t, t)
        assert driver.create_output_topic("out").read_key_values() == [
            ("a", 0),
            ("b", 120),
            ("tick", 120),
            ("c", 150),
            ("tick", 260),
        ]


@pytest.mark.parametrize("mode", ["skip", "dead-letter", "fail"])
def test_bad_records_follow_the_processing_errors_strategy(mode: str) -> None:
    app = ts.App("errors", processing_errors=mode)  # type: ignore[arg-type]
    app.stream("in").map_values(lambda v: 100 // v).to("out")
    with TopologyTestDriver(app) as driver:
        src = driver.create_input_topic("in")
        src.pipe_input("a", 4, 1)
        if mode == "fail":
            with pytest.raises(ts.ProcessingError, match="in-0@1"):
                src.pipe_input("b", 0, 2, (("h", "1"),))
            return
        src.pipe_input("b", 0, 2, (("h", "1"),))
        src.pipe_input("c", 5, 3)
        assert driver.create_output_topic("out").read_key_values() == [("a", 25), ("c", 20)]
        assert driver.metrics()["skipped-records"] == 1
        dlq = driver.create_output_topic("errors-dlq").read_records()
        if mode == "skip":
            assert dlq == []
        else:
            (letter,) = dlq
            assert (letter.key, letter.value) == ("b", 0)
            headers = dict(letter.headers)
            assert headers["h"] == "1" and headers["__streams.errors.offset"] == "1"
            assert "ZeroDivisionError" in headers["__streams.errors.exception.message"]


def test_eos_style_running_aggregates_through_a_repartition() -> None:
    """Kafka's EosTestDriver topology: echo, min, max, sum and cnt per key, before and after a repartition."""
    app = ts.App("eos")
    data = app.stream("data")
    data.to("echo")
    grouped = data.group_by_key()
    grouped.reduce(min, store="min").to_stream().to("min")
    grouped.reduce(max, store="max").to_stream().to("max")
    grouped.aggregate(lambda: 0, lambda k, v, a: a + v, store="sum").to_stream().to("sum")
    data.select_key(lambda k, v: f"r-{k}").group_by_key(name="cnt").count(store="cnt").to_stream().to("cnt")
    rng = random.Random(7)
    records = [(f"k{rng.randrange(5)}", rng.randrange(-50, 50)) for _ in range(300)]
    with TopologyTestDriver(app) as driver:
        src = driver.create_input_topic("data")
        for i, (k, v) in enumerate(records):
            src.pipe_input(k, v, i)
        by_key: dict[str, list[int]] = defaultdict(list)
        for k, v in records:
            by_key[k].append(v)
        assert driver.create_output_topic("echo").read_key_values() == records
        assert driver.create_output_topic("min").read_key_values_to_map() == {
            k: min(v) for k, v in by_key.items()
        }
        assert driver.create_output_topic("max").read_key_values_to_map() == {
            k: max(v) for k, v in by_key.items()
        }
        assert driver.create_output_topic("sum").read_key_values_to_map() == {
            k: sum(v) for k, v in by_key.items()
        }
        assert driver.create_output_topic("cnt").read_key_values_to_map() == {
            f"r-{k}": len(v) for k, v in by_key.items()
        }
        # The running sums are the in-order recomputation, record by record.
        running: dict[str, int] = defaultdict(int)
        expected = []
        for k, v in records:
            running[k] += v
            expected.append((k, running[k]))
        # (read above consumed the topic: recompute from a fresh driver)
    with TopologyTestDriver(app) as driver:
        src = driver.create_input_topic("data")
        for i, (k, v) in enumerate(records):
            src.pipe_input(k, v, i)
        assert driver.create_output_topic("sum").read_key_values() == expected


def test_topology_errors() -> None:
    app = ts.App("bad")
    app.stream("in").group_by_key().count(store="x")
    with pytest.raises(ts.TopologyError, match="used twice"):
        app.stream("in").group_by_key().count(store="x")
    with pytest.raises(ValueError, match="application_id"):
        ts.App("no spaces")
    assert isinstance(Windowed("k", Window(0, 1)).to_json(), dict)
