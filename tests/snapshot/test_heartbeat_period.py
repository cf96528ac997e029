"""The heartbeat period ringwatch learns per member (docs/staleness.md), and the stale
judgement against it, with synthetic members and a fake clock fed to the real builder."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.heartbeats import (
    BeatingMember,
    every,
    member_item,
    scan_members,
    table_read,
    view_of,
)

from ringwatch.snapshot.builder import SnapshotBuilder
from ringwatch.snapshot.model import MemberView
from ringwatch.snapshot.problems import StaleRule

T0 = 1_700_000_000.3  # the first beat, a third of a second into a Cortex second


def views(member: BeatingMember, scan_times: list[float], *, builder: SnapshotBuilder | None = None,
          failed: frozenset[float] = frozenset()) -> list[MemberView | None]:
    """The member as each scan saw it, from one builder."""
    builder = builder or SnapshotBuilder(stale_after=60.0)
    return [view_of(s, member.name)
            for s in scan_members(builder, [member], scan_times, failed)]


def learned(seen: list[MemberView | None]) -> list[int | None]:
    """The period each scan had learned (None: unknown, or the member not there)."""
    return [v.heartbeat_period if v else None for v in seen]


@pytest.mark.parametrize("scan_interval", [1.0, 5.0, 15.0])
def test_a_5s_member_is_learned_as_5s_with_a_20s_threshold_at_any_scan_interval(
        scan_interval: float) -> None:
    seen = views(BeatingMember("ingester-1", 5, T0), every(scan_interval, T0 + 1.7, T0 + 300))
    periods = learned(seen)
    print(f"scan every {scan_interval:g}s: periods {periods[:10]}")
    known = [p for p in periods if p is not None]
    assert set(known) == {5}
    # Known after 3 samples: the 4th heartbeat seen, scans permitting.
    assert periods.index(5) * scan_interval <= 3 * max(5, scan_interval) + scan_interval
    assert {v.stale_threshold for v in seen if v and v.heartbeat_period} == {20.0}
    assert not any(v.stale for v in seen if v)


def test_a_15s_member_scanned_every_15s_is_learned_as_15s_not_as_where_the_scans_fall() -> None:
    # Each heartbeat is seen by one scan only, 1.7 s after it: the age alone says 2 s; the
    # version (one write a beat) says the 15 s step holds one beat.
    seen = views(BeatingMember("store-gateway-1", 15, T0), every(15, T0 + 1.7, T0 + 600))
    assert max(v.heartbeat_age for v in seen if v) < 2.5
    assert set(learned(seen)[5:]) == {15}
    assert seen[-1].stale_threshold == 60.0


def test_a_15s_member_scanned_every_15s_rides_out_beats_two_periods_late() -> None:
    # A DynamoDB latency spike: beats 30 to 32 come 30 s late (two periods). The scans
    # fall 1.7 s after each beat, so a gap from the ages alone, min(step, age at the
    # scans), learns 2 s and judges against the 20 s floor: stale at 32 s. Learned as
    # 15 s (one version a beat), the threshold is 60 s.
    member = BeatingMember("store-gateway-1", 15, T0,
                           delay=lambda n: 30.0 if 30 <= n <= 32 else 0.0)
    seen = views(member, every(15, T0 + 1.7, T0 + 900))
    oldest = max(v.heartbeat_age for v in seen if v)
    print(f"oldest heartbeat seen {oldest:.1f}s")
    assert oldest > 30
    assert {v.heartbeat_period for v in seen[5:]} == {15}  # the late gaps are outvoted
    assert not any(v.stale for v in seen if v)


def test_a_5s_member_scanned_every_15s_counts_three_beats_a_step() -> None:
    seen = views(BeatingMember("ingester-1", 5, T0), every(15, T0 + 0.2, T0 + 600))
    assert set(learned(seen)[5:]) == {5}


def test_a_60s_member_scanned_every_5s_is_never_stale_between_on_time_beats() -> None:
    seen = views(BeatingMember("slow-1", 60, T0), every(5, T0 + 2, T0 + 1200))
    known = [v for v in seen if v and v.heartbeat_period is not None]
    assert {v.heartbeat_period for v in known} == {60}
    assert {v.stale_threshold for v in known} == {120.0}
    oldest = max(v.heartbeat_age for v in known)
    print(f"oldest heartbeat seen {oldest:.1f}s, threshold 120s")
    assert 55 < oldest < 61
    assert not any(v.stale for v in known)


def test_missed_scans_change_neither_the_period_nor_what_is_kept_between_scans() -> None:
    scans = every(5, T0 + 1, T0 + 300)
    failed = frozenset(scans[i] for i in range(10, len(scans), 3))  # every third scan fails
    builder = SnapshotBuilder(stale_after=60.0)
    seen = views(BeatingMember("ingester-1", 5, T0), scans, builder=builder, failed=failed)
    good = [v for at, v in zip(scans, seen, strict=True) if at not in failed]
    assert set(learned(good)[4:]) == {5}
    # A failed scan serves the last good view; the next good scan still knows the period.
    assert all(v is not None and v.heartbeat_period == 5 for v in seen[10:])


def test_a_member_20_minutes_behind_in_clock_is_learned_from_its_steps() -> None:
    member = BeatingMember("ingester-skewed", 5, T0, clock_offset=-1200)
    seen = views(member, every(5, T0 + 1, T0 + 300))
    assert set(learned(seen)[5:]) == {5}
    assert all(v.heartbeat_age > 1199 for v in seen if v)
    assert all(v.stale for v in seen if v)  # its heartbeat IS 20 minutes old


def test_a_new_registration_forgets_the_period() -> None:
    builder = SnapshotBuilder(stale_after=60.0)
    first = BeatingMember("ingester-1", 5, T0)
    assert learned(views(first, every(5, T0 + 1, T0 + 60), builder=builder))[-1] == 5
    again = BeatingMember("ingester-1", 5, T0 + 61, registered=1_700_000_061)
    seen = views(again, every(5, T0 + 62, T0 + 120), builder=builder)
    assert learned(seen)[0] is None  # the first scan of the new registration
    assert seen[0].stale_threshold == 60.0
    assert learned(seen)[-1] == 5


def test_a_member_that_disappears_is_forgotten() -> None:
    builder = SnapshotBuilder(stale_after=60.0)
    member = BeatingMember("ingester-1", 5, T0)
    assert learned(views(member, every(5, T0 + 1, T0 + 60), builder=builder))[-1] == 5
    other = BeatingMember("ingester-2", 5, T0)
    scan_members(builder, [other], [T0 + 65])  # ingester-1's item is gone
    assert learned(views(member, [T0 + 70], builder=builder)) == [None]


def test_a_frozen_5s_member_is_stale_once_its_heartbeat_is_more_than_20s_old() -> None:
    member = BeatingMember("ingester-2", 5, T0, frozen_at=T0 + 100)
    scans = every(1, T0 + 0.5, T0 + 160)
    seen = views(member, scans)
    last_beat = T0 + 100
    for at, view in zip(scans, seen, strict=True):
        assert view is not None
        if at > last_beat:
            assert view.heartbeat_period == 5  # frozen: no new sample
            assert view.stale == (view.heartbeat_age > 20)
    first_stale = next(at for at, v in zip(scans, seen, strict=True) if v.stale)
    print(f"stale {first_stale - last_beat:.1f}s after the last heartbeat")
    assert 20 < first_stale - math.floor(last_beat) <= 21


def test_while_the_period_is_unknown_the_threshold_is_the_cap() -> None:
    builder = SnapshotBuilder(stale_after=45.0)
    seen = views(BeatingMember("ingester-1", 5, T0), every(5, T0 + 1, T0 + 11), builder=builder)
    assert learned(seen) == [None, 5, 5]  # the first scan has no step yet
    assert seen[0].stale_threshold == 45.0
    # A member first seen 50 s after its last heartbeat: unknown period, judged at the cap.
    old = builder.build([table_read([member_item("ghost", int(T0), 1)], T0 + 50)], None, T0 + 50)
    ghost = view_of(old, "ghost")
    assert ghost.heartbeat_period is None and ghost.stale and ghost.stale_threshold == 45.0


def test_a_latency_spike_does_not_move_the_period() -> None:
    # Beats 20 to 22 each come 10 s late (two periods): one gap of 15 s among gaps of 5 s,
    # and the period is the lower median of the last eight.
    member = BeatingMember("ingester-1", 5, T0, delay=lambda n: 10.0 if 20 <= n <= 22 else 0.0)
    scans = every(1, T0 + 0.5, T0 + 250)
    seen = views(member, scans)
    assert set(learned(seen)[6:]) == {5}
    assert not any(v.stale for v in seen if v)  # 15 s old at worst, under the 20 s floor


def test_the_stale_threshold_at_the_defaults_and_at_the_edges() -> None:
    rule = StaleRule()
    assert [rule.threshold(p) for p in (None, 1, 5, 15, 30, 60, 120)] == [
        60.0, 20.0, 20.0, 60.0, 60.0, 120.0, 240.0]
    assert StaleRule(cap=30.0, periods=4, floor=20.0).threshold(10) == 30.0
    assert StaleRule(cap=60.0, periods=2, floor=5.0).threshold(5) == 10.0


# -- what can be proved: hypothesis over periods, scan schedules and clocks ------------

@settings(max_examples=300, deadline=None)
@given(period=st.integers(1, 60), scan_interval=st.floats(0.5, 30.0),
       first_beat=st.floats(0.0, 1.0), first_scan=st.floats(0.0, 60.0),
       clock_offset=st.one_of(st.just(0.0), st.floats(-1500.0, 30.0)),
       missed=st.sets(st.integers(0, 79), max_size=20))
def test_on_time_beats_are_never_learned_below_their_period_nor_judged_stale(
        period: int, scan_interval: float, first_beat: float, first_scan: float,
        clock_offset: float, missed: set[int]) -> None:
    """Proved here, for a member beating every `period` whole seconds, one CAS write a
    beat, under any scan interval, phase, missed scans and constant clock offset:
    - the learned period is never below the true one (the version counts the beats);
    - it is never above period + 1 s unless the member's clock is behind ours;
    - with its period known and its clock not behind, it is never judged stale.
    (Not proved: that a period is learned at all in a given time when scans fail often.)"""
    start = T0 + first_beat
    member = BeatingMember("m", period, start, clock_offset=clock_offset)
    scans = [start + first_scan + i * scan_interval for i in range(80)]
    failed = frozenset(scans[i] for i in missed)
    seen = views(member, scans, failed=failed)
    for at, view in zip(scans, seen, strict=True):
        if view is None or at in failed or view.heartbeat_period is None:
            continue
        assert view.heartbeat_period >= period
        if clock_offset >= 0:
            assert view.heartbeat_period <= period + 1
            assert not view.stale, (view.heartbeat_age, view.stale_threshold)


@given(period=st.one_of(st.none(), st.integers(1, 3600)), periods=st.integers(2, 10),
       floor=st.floats(1.0, 120.0), cap=st.floats(1.0, 600.0))
def test_the_threshold_lies_between_the_floor_and_the_cap_and_never_below_two_periods(
        period: int | None, periods: int, floor: float, cap: float) -> None:
    floor = min(floor, cap)  # as the configuration enforces
    rule = StaleRule(cap=cap, periods=periods, floor=floor)
    threshold = rule.threshold(period)
    if period is None:
        assert threshold == cap
        return
    assert threshold >= min(floor, 2 * period) or threshold >= 2 * period
    assert threshold >= 2 * period  # with periods >= 2: never stale between on-time beats
    assert threshold <= max(cap, 2 * period)
    assert rule.threshold(period + 1) >= threshold  # monotone in the period


def test_real_cortex_dumps_scanned_every_25_to_45s_learn_the_5s_and_15s_periods() -> None:
    """Five dumps of a real Cortex table, in capture order, as five scans far slower than
    the beats. Real Cortex bumps `version` once per heartbeat (ingester-1: 45 s, 9
    versions), so the 5 s ingesters and the 15 s store-gateway come out exact; the
    gap from the ages alone, min(step, age at the scans), says 3-4 s and 11 s."""
    from support.cortexdata import load_dump

    from ringwatch.dynamodb.reader import TableRead

    builder = SnapshotBuilder(stale_after=60.0)
    snapshot = None
    for dump in ("healthy", "sigstop-45s", "sigterm-3s", "after-sigterm-exit", "with-ttl"):
        document = load_dump(dump)
        at = document["_capture"]["captured_at_unix"]
        snapshot = builder.build([TableRead("t", at, items=document["Items"])], snapshot, at)
    periods = {(r.ring, v.member.name): v.heartbeat_period
               for r in snapshot.tables[0].rings for v in r.members}
    assert periods == {
        ("collectors/compactor", "extra-1"): 5,
        ("collectors/distributor", "extra-1"): 5,
        ("collectors/ring", "ingester-1"): 5,
        # Frozen (SIGSTOP) ~46 s, stale meanwhile: that gap is not its period.
        ("collectors/ring", "ingester-2"): 5,
        ("collectors/ring", "ingester-3"): None,  # registered again: forgotten
        ("collectors/store-gateway", "extra-1"): 15,
    }


def test_a_member_that_freezes_30s_after_it_is_first_seen_is_judged_by_its_own_period() -> None:
    # Scans every 15 s; ringwatch first sees the member, then two steps of three beats
    # each, then the member freezes. The first step already says 5 s (15 s, 3 versions).
    first_scan = T0 + 1.7
    member = BeatingMember("ingester-new", 5, T0, frozen_at=first_scan + 30)
    scans = every(15, first_scan, first_scan + 120)
    seen = views(member, scans)
    assert seen[1] is not None and seen[1].heartbeat_period == 5
    assert seen[1].stale_threshold == 20.0
    last_beat = member.last_beat(first_scan + 30)
    assert last_beat is not None
    first_stale = next(at for at, v in zip(scans, seen, strict=True) if v and v.stale)
    print(f"stale {first_stale - last_beat[0]:.1f}s after the last heartbeat")
    assert first_stale - last_beat[0] <= 20 + 15
