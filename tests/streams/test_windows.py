"""Window assignment and session merging against brute force (hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tidelog.streams import SessionWindows, SlidingWindows, TimeWindows, Window
from tidelog.streams._windows import merge_session

sizes = st.integers(min_value=1, max_value=50)
timestamps = st.integers(min_value=0, max_value=500)


@given(size=sizes, data=st.data(), ts=timestamps)
def test_time_windows_are_every_aligned_window_holding_the_timestamp(
    size: int, data: st.DataObject, ts: int
) -> None:
    advance = data.draw(st.integers(min_value=1, max_value=size))
    windows = TimeWindows.of(size).advance_by(advance)
    expected = [Window(s, s + size) for s in range(0, ts + 1) if s % advance == 0 and s <= ts < s + size]
    assert windows.windows_for(ts) == expected


@given(size=sizes, ts=timestamps)
def test_tumbling_windows_partition_time(size: int, ts: int) -> None:
    (window,) = TimeWindows.of(size).windows_for(ts)
    assert window.start <= ts < window.end and window.start % size == 0


@given(size=sizes, grace=st.integers(min_value=0, max_value=20), ts=timestamps, now=timestamps)
def test_a_time_window_closes_at_end_plus_grace(size: int, grace: int, ts: int, now: int) -> None:
    windows = TimeWindows.of(size, grace_ms=grace)
    for window in windows.windows_for(ts):
        assert windows.closed(window, now) == (now >= window.end + grace)


@given(d=sizes, existing=st.lists(timestamps, max_size=8), new=timestamps)
def test_sliding_windows_changed_by_a_record_all_contain_it(d: int, existing: list[int], new: int) -> None:
    windows = SlidingWindows.of(d)
    affected = windows.windows_for(existing, new)
    assert Window(max(0, new - d), new) in affected
    for w in affected:
        assert w.start <= new <= w.end or w == Window(new + 1, new + 1 + d)
    # Every "left" or "right" window of an existing record that covers the new one is affected.
    for t in existing:
        for w in (Window(max(0, t - d), t), Window(t + 1, t + 1 + d)):
            if w.start <= new <= w.end:
                assert w in affected


def _brute_sessions(timestamps: list[int], gap: int) -> list[Window]:
    """Sessions of a set of timestamps: sorted, split where two neighbours are more than gap apart."""
    result: list[Window] = []
    for t in sorted(timestamps):
        if result and t - result[-1].end <= gap:
            result[-1] = Window(result[-1].start, t)
        else:
            result.append(Window(t, t))
    return result


@given(gap=st.integers(min_value=1, max_value=30), stamps=st.lists(timestamps, min_size=1, max_size=30))
def test_merging_sessions_record_by_record_equals_brute_force(gap: int, stamps: list[int]) -> None:
    sessions: set[Window] = set()
    for t in stamps:
        merged, replaced = merge_session(sessions, t, gap)
        sessions -= set(replaced)
        sessions.add(merged)
    assert sorted(sessions) == _brute_sessions(stamps, gap)


def test_window_parameters_are_checked() -> None:
    import pytest

    with pytest.raises(ValueError):
        TimeWindows.of(0)
    with pytest.raises(ValueError):
        TimeWindows.of(10).advance_by(11)
    with pytest.raises(ValueError):
        SessionWindows.with_inactivity_gap(-1)
