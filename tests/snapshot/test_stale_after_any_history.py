"""No past slows the next stale call: after freezes, clock jumps, late beats and missed
scans, a member that freezes is called stale as soon as a member with a clean history
and the same period would be, plus one scan; and an on-time member never is.

The real `SnapshotBuilder` with a fake clock; the reference is the plain rule a clean
member meets (`clean_stale_bound`)."""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from support.heartbeats import member_item, table_read, view_of

from ringwatch.snapshot.builder import PERIOD_WINDOW, SnapshotBuilder
from ringwatch.snapshot.model import MemberView
from ringwatch.snapshot.problems import StaleRule

T0 = 1_700_000_000.3
RULE = StaleRule()  # the defaults: cap 1m, 4 periods, floor 20s


@dataclass
class ScriptedMember:
    """A member that wrote heartbeat `written[i]` at true time `at[i]` (sorted), one CAS
    write each."""

    name: str
    at: list[float]
    written: list[int]

    def item(self, now: float) -> dict[str, Any] | None:
        """The item a scan at `now` reads; None before the first beat."""
        n = bisect_right(self.at, now)
        if n == 0:
            return None
        return member_item(self.name, self.written[n - 1], 1_700_000_000, version=n)


def judged(member: ScriptedMember, scans: list[float],
           failed: frozenset[float] = frozenset()) -> list[tuple[float, MemberView]]:
    """(scan time, the member's view) at each successful scan that saw the member."""
    builder = SnapshotBuilder(stale_after=RULE.cap, stale_periods=RULE.periods,
                              stale_floor=RULE.floor)
    seen = []
    previous = None
    for at in scans:
        ok = at not in failed
        item = member.item(at)
        previous = builder.build([table_read([item] if item else [], at, ok=ok)], previous, at)
        view = view_of(previous, member.name)
        if ok and view is not None:
            seen.append((at, view))
    return seen


def first_stale_after(seen: list[tuple[float, MemberView]], after: float) -> float:
    """The first scan after `after` that called the member stale."""
    return next(at for at, view in seen if at > after and view.stale)


def clean_stale_bound(period: float, scan_interval: float) -> float:
    """The reference: how long after its last (whole-second) heartbeat a member with a
    clean history and this steady period is called stale at the latest, plus one scan.
    A clean member learns its period to the second (its gaps are whole seconds), and is
    stale at the first scan past the threshold."""
    return RULE.threshold(math.ceil(period) + 1) + 2 * scan_interval


def steady(start: float, period: float, count: int, offset: float = 0.0
           ) -> list[tuple[float, int]]:
    """`count` on-time beats from `start`, their clock `offset` from ours."""
    return [(start + i * period, math.floor(start + i * period + offset)) for i in range(count)]


def scripted(beats: list[tuple[float, int]]) -> ScriptedMember:
    """A member from (true time, written timestamp) beats."""
    beats.sort()
    return ScriptedMember("m", [b[0] for b in beats], [b[1] for b in beats])


def test_a_relapse_40s_after_a_10_minute_freeze_is_stale_within_25s() -> None:
    beats = steady(T0, 5, 20) + steady(T0 + 100 + 600, 5, 9)  # 40 s of beats, then frozen
    member = scripted(beats)
    last = member.written[-1]
    seen = judged(member, [T0 + 0.5 + 5 * i for i in range(200)])
    after_first = first_stale_after(seen, T0 + 100)
    relapse = first_stale_after(seen, member.at[-1]) - last
    print(f"first freeze stale after {after_first - (T0 + 95):.1f}s, relapse after {relapse:.1f}s")
    assert relapse <= 25
    assert max(v.heartbeat_period or 0 for _, v in seen) == 5


def test_after_a_one_day_clock_jump_and_back_a_freeze_is_stale_within_25s() -> None:
    beats = (steady(T0, 5, 20) + steady(T0 + 100, 5, 4, offset=86400)  # a day ahead for 20 s
             + steady(T0 + 120, 5, 2))  # back, one more step, then frozen
    member = scripted(beats)
    seen = judged(member, [T0 + 0.5 + 5 * i for i in range(60)])
    relapse = first_stale_after(seen, member.at[-1]) - member.written[-1]
    print(f"stale {relapse:.1f}s after the last heartbeat")
    assert relapse <= 25


def test_with_timestamps_alternating_an_hour_either_way_a_freeze_is_stale_within_the_cap(
) -> None:
    beats = [(T0 + 5 * i, math.floor(T0 + 5 * i + (3600 if i % 2 else -3600)))
             for i in range(40)] + steady(T0 + 200, 5, 1)  # then on time once, and frozen
    member = scripted(beats)
    seen = judged(member, [T0 + 0.5 + 5 * i for i in range(80)])
    relapse = first_stale_after(seen, member.at[-1]) - member.written[-1]
    print(f"stale {relapse:.1f}s after the last heartbeat")
    assert relapse <= RULE.cap + 5


# -- any history, then a freeze -----------------------------------------------------------

EVENTS = st.one_of(
    st.tuples(st.just("beats"), st.integers(1, 30)),
    st.tuples(st.just("freeze"), st.floats(1.0, 900.0)),
    st.tuples(st.just("jump"), st.sampled_from([-86400.0, -3600.0, -60.0, 7.0, 3600.0,
                                                86400.0]), st.integers(1, 6)),
    st.tuples(st.just("late"), st.floats(0.5, 40.0)),
    st.tuples(st.just("alternate"), st.integers(2, 10)),
    st.tuples(st.just("extra write"), st.integers(1, 3)),
)


def history_beats(period: float, events: list[tuple[Any, ...]], jitter: list[float]
                  ) -> tuple[list[tuple[float, int]], float]:
    """The beats of a generated history, and when it ends."""
    beats: list[tuple[float, int]] = []
    now = T0
    for n, event in enumerate(events):
        kind = event[0]
        if kind == "beats":
            for i in range(event[1]):
                at = now + jitter[(n + i) % len(jitter)]
                beats.append((at, math.floor(at)))
                now += period
        elif kind == "freeze":
            now += event[1]
        elif kind == "jump":
            beats += steady(now, period, event[2], offset=event[1])
            now += event[2] * period
        elif kind == "late":
            now += event[1]
            beats.append((now, math.floor(now)))
            now += period
        elif kind == "alternate":
            beats += [(now + i * period, math.floor(now + i * period + (3600 if i % 2 else -3600)))
                      for i in range(event[1])]
            now += event[1] * period
        else:  # a state change: more CAS writes (each a heartbeat) within one period
            beats += [(now + (i + 1) * period / (event[1] + 2), math.floor(now + (i + 1) * period
                                                                          / (event[1] + 2)))
                      for i in range(event[1])]
            now += period
    return beats, now


@settings(max_examples=60, deadline=None)
@given(period=st.sampled_from([1, 2, 5, 10, 15]), scan_interval=st.floats(1.0, 15.0),
       phase=st.floats(0.0, 1.0), jitter=st.lists(st.floats(0.0, 0.3), min_size=1, max_size=5),
       events=st.lists(EVENTS, min_size=1, max_size=6),
       missed=st.sets(st.integers(0, 400), max_size=40))
def test_after_any_history_a_freeze_is_stale_within_the_clean_bound_plus_one_scan(
        period: int, scan_interval: float, phase: float, jitter: list[float],
        events: list[tuple[Any, ...]], missed: set[int]) -> None:
    """After any history, then enough clean beats to fill the period's window
    (PERIOD_WINDOW scans' worth), the member freezes: stale within the clean bound."""
    beats, now = history_beats(period, events, jitter)
    tail = max(PERIOD_WINDOW, math.ceil((PERIOD_WINDOW + 1) * scan_interval / period) + 1)
    beats += [(now + i * period + jitter[i % len(jitter)],
               math.floor(now + i * period + jitter[i % len(jitter)])) for i in range(tail)]
    member = scripted(beats)
    last_beat, last_written = member.at[-1], member.written[-1]
    scans = [T0 + phase + i * scan_interval
             for i in range(int((last_beat + 200 - T0) / scan_interval))]
    history_scans = [s for s in scans if s < now]
    failed = frozenset(history_scans[i] for i in missed if i < len(history_scans))
    seen = judged(member, scans, failed)
    stale_at = first_stale_after(seen, last_beat)
    bound = clean_stale_bound(period, scan_interval)
    assert stale_at - last_written <= bound, (stale_at - last_written, bound)


@settings(max_examples=100, deadline=None)
@given(period=st.integers(1, 60), scan_interval=st.floats(0.5, 30.0),
       phase=st.floats(0.0, 60.0), jitter=st.lists(st.floats(0.0, 0.5), min_size=1, max_size=7))
def test_a_member_beating_on_time_with_jitter_is_never_stale_once_its_period_is_known(
        period: int, scan_interval: float, phase: float, jitter: list[float]) -> None:
    beats = [(T0 + i * period + jitter[i % len(jitter)],
              math.floor(T0 + i * period + jitter[i % len(jitter)])) for i in range(100)]
    member = scripted(beats)
    scans = [T0 + phase + i * scan_interval
             for i in range(int((member.at[-1] - T0 - phase) / scan_interval))]
    for at, view in judged(member, scans):
        if view.heartbeat_period is not None:
            assert view.heartbeat_period >= period - 1
            assert not view.stale, (at, view.heartbeat_age, view.stale_threshold)
