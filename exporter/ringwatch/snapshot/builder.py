"""Builds a `Snapshot` from one scan's table reads and the previous snapshot."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from math import ceil
from operator import attrgetter
from typing import Any

import msgspec

from ringwatch.cortex.decode import (
    DecodeError,
    ItemDecoder,
    Member,
    read_items_json,
    unexpected_error,
)
from ringwatch.cortex.ownership import OwnershipCache
from ringwatch.cortex.proto import KNOWN_STATES
from ringwatch.gcpause import gc_paused
from ringwatch.snapshot.model import MemberView, RingView, ScanResult, Snapshot, TableView
from ringwatch.snapshot.problems import StaleRule, is_stale

_by_member = attrgetter("name")
_tokens_of = attrgetter("tokens")
_state_of = attrgetter("state")
_heartbeat_of = attrgetter("heartbeat_timestamp")

PERIOD_WINDOW = 8  # the last accepted gaps a period is the lower median of


@dataclass(slots=True)
class HeartbeatTrack:
    """What ringwatch saw of one registration's heartbeats, kept between scans, and
    the heartbeat period it learns from them (docs/staleness.md)."""

    registered: int
    timestamp: int  # the current heartbeat
    version: int  # the item's version when `timestamp` was first seen
    max_age: float  # the largest age seen at a scan while `timestamp` was current
    threshold: float  # the stale threshold the member is judged by now
    cap: float  # the longest period ringwatch believes (--ring.stale-after)
    # The last PERIOD_WINDOW accepted gaps, whole seconds, oldest first. An array
    # (no object per gap for the cyclic GC to walk).
    gaps: array[int] = field(default_factory=lambda: array("Q"))
    period: int | None = None

    def observe(self, timestamp: int, version: int, age: float) -> None:
        """One scan saw this heartbeat and version at this age (same registration)."""
        if timestamp == self.timestamp:
            self.max_age = max(self.max_age, age)
            return
        step = timestamp - self.timestamp
        if step > 0:  # a clock that went back says nothing about the period
            self._add_gap(step, max(version - self.version, 1))
        self.timestamp = timestamp
        self.version = version
        self.max_age = age

    def _add_gap(self, step: int, beats: int) -> None:
        """Learn from one step of the heartbeat that covered `beats` CAS writes."""
        # The mean gap in the step (one CAS write a beat); an extra write cannot pull
        # it below the oldest age seen in the step, nor can that age raise it past
        # the step (both are at most the true gap).
        gap = max(ceil(min(step, max(self.max_age, step / beats))), 1)
        if gap > self.threshold + 1:  # + 1: heartbeats are whole seconds
            return  # the member was stale meanwhile (a freeze, a clock jump): not a period
        gaps = self.gaps
        if len(gaps) >= PERIOD_WINDOW:
            del gaps[0]
        gaps.append(gap)
        self.period = min(sorted(gaps)[(len(gaps) - 1) // 2], ceil(self.cap))


def _first_of_each(found: list[Member], errors: list[DecodeError]) -> list[Member]:
    """One member per id, the first read; each repeat becomes a `duplicate` error.

    A snapshot holds one (ring, member): a repeated item (pages that repeat, keys
    that differ only in encoding) would double every total."""
    kept: list[Member] = []
    seen: set[str] = set()
    for member in found:
        if member.name in seen:
            errors.append(DecodeError("duplicate", "the same ring and member again; the "
                                      "first item is kept", member.ring, member.name))
            continue
        seen.add(member.name)
        kept.append(member)
    return kept


@dataclass
class _Changes:
    """What changed in a table since its previous view (`TableView.changes`, `.gone`)."""

    moved: list[tuple[str, MemberView | None, MemberView]] = field(default_factory=list)
    gone: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class SnapshotBuilder:
    """Turns scan reads into snapshots; remembers what CAS tracking and the
    ownership cache need between scans."""

    stale_after: float  # the cap, and the threshold while a period is unknown
    stale_periods: int = 4
    stale_floor: float = 20.0
    ownership_cache: OwnershipCache = field(default_factory=OwnershipCache)
    decoder: ItemDecoder = field(default_factory=ItemDecoder)
    # table -> (the TableView last built, its members by ring and id)
    _indexes: dict[str, tuple[TableView, dict[str, dict[str, MemberView]]]] = field(
        default_factory=dict, repr=False)
    # table -> ring -> member -> its heartbeats; kept while a table's scans fail
    _tracks: dict[str, dict[str, dict[str, HeartbeatTrack]]] = field(
        default_factory=dict, repr=False)
    _thresholds: dict[int | None, float] = field(default_factory=dict, repr=False)
    _scan_started: bool = field(default=False, repr=False)

    @property
    def stale_rule(self) -> StaleRule:
        """The rule members are judged stale by."""
        return StaleRule(self.stale_after, self.stale_periods, self.stale_floor)

    def start_scan(self) -> None:
        """Begin a scan whose pages are decoded as they arrive (`decode_page`)."""
        self.decoder.start_scan()
        self._scan_started = True

    def decode_page(self, items: Any) -> list[Member | DecodeError]:
        """One page's items (their JSON as a `msgspec.Raw`, or item dicts) decoded, each
        a `Member` or the `DecodeError` it raised: a read keeps these, not the page."""
        if isinstance(items, msgspec.Raw):
            items = read_items_json(items)
        decode = self._decode_one
        return [decode(item) for item in items]

    def _decode_one(self, item: Any) -> Member | DecodeError:
        """One item decoded, or the `DecodeError` it raised."""
        try:
            return self.decoder.decode(item)
        except DecodeError as err:
            return err
        except Exception as exc:  # a decoder bug costs this item, not the scan
            return unexpected_error(item, exc)

    def build(self, reads: Iterable[ScanResult], previous: Snapshot | None,
              now: float) -> Snapshot:
        """The snapshot of these reads (raw items, or pages `decode_page` decoded)."""
        with gc_paused():
            return self._build(reads, previous, now)

    def _build(self, reads: Iterable[ScanResult], previous: Snapshot | None,
               now: float) -> Snapshot:
        tables = []
        if not self._scan_started:
            self.decoder.start_scan()
        self._scan_started = False
        for read in reads:
            old = previous.table(read.table) if previous else None
            tables.append(self._table(read, old, now))
        self.decoder.end_scan()
        live = {(t.table, r.ring) for t in tables for r in t.rings}
        self.ownership_cache.retain(live)
        names = {t.table for t in tables}
        self._indexes = {k: v for k, v in self._indexes.items() if k in names}
        self._tracks = {k: v for k, v in self._tracks.items() if k in names}
        return Snapshot(created_at=now, tables=tuple(tables), stale_after=self.stale_after,
                        stale_periods=self.stale_periods, stale_floor=self.stale_floor)

    def _table(self, read: ScanResult, old: TableView | None, now: float) -> TableView:
        if not read.ok:
            return TableView(
                table=read.table, ok=False, result=read.result, error=read.error,
                attempted_at=read.started_at, scan_duration=read.duration,
                scanned_at=old.scanned_at if old else None,
                rings=old.rings if old else (),
            )
        members: dict[str, list[Member]] = {}
        errors: list[DecodeError] = []
        decode = self._decode_one
        for item in read.items:
            # Items `decode_page` decoded as their page arrived, else raw items.
            member = item if type(item) in (Member, DecodeError) else decode(item)
            if type(member) is DecodeError:
                errors.append(member)
            else:
                members.setdefault(member.ring, []).append(member)
        for ring, found in members.items():
            if len({m.name for m in found}) != len(found):
                members[ring] = _first_of_each(found, errors)
        previous = self._member_index(old)
        index: dict[str, dict[str, MemberView]] = {}
        old_tracks = self._tracks.get(read.table, {})
        tracks: dict[str, dict[str, HeartbeatTrack]] = {}
        # Noted only against a previous view of the table (a first scan changes all).
        changes = _Changes() if old is not None else None
        scan_time = read.started_at
        rings = tuple(
            self._ring(read.table, ring, members[ring], previous.get(ring, {}),
                       index.setdefault(ring, {}), old_tracks.get(ring, {}),
                       tracks.setdefault(ring, {}), scan_time, changes)
            for ring in sorted(members)
        )
        self._tracks[read.table] = tracks
        if changes is not None:
            for ring, before in previous.items():
                if ring not in members:
                    changes.gone += [(ring, name) for name in before]
        view = TableView(
            table=read.table, ok=True, result=read.result, error=None,
            attempted_at=read.started_at, scan_duration=read.duration,
            scanned_at=read.started_at, rings=rings, decode_errors=tuple(errors),
            changes=tuple(changes.moved) if changes is not None else (),
            gone=tuple(changes.gone) if changes is not None else (),
        )
        self._indexes[read.table] = (view, index)
        return view

    def _member_index(self, old: TableView | None) -> dict[str, dict[str, MemberView]]:
        """ring -> member -> view of `old`; the one built with `old` if it is ours."""
        if old is None:
            return {}
        built = self._indexes.get(old.table)
        if built is not None and built[0] is old:
            return built[1]
        return {r.ring: {v.member.name: v for v in r.members} for r in old.rings}

    def _ring(self, table: str, ring: str, members: list[Member],
              previous: dict[str, MemberView], index: dict[str, MemberView],
              old_tracks: dict[str, HeartbeatTrack], tracks: dict[str, HeartbeatTrack],
              scan_time: float, changes: _Changes | None) -> RingView:
        members.sort(key=_by_member)
        ownership = self.ownership_cache.ownership(
            (table, ring), dict(zip(map(_by_member, members), map(_tokens_of, members),
                                    strict=True)))
        views = []
        add = views.append
        get_track = old_tracks.get
        thresholds = self._thresholds
        threshold_of = self.stale_rule.threshold
        get_previous = previous.get
        get_ownership = ownership.get
        moved = changes.moved if changes is not None else None
        # Ages from the scan time to the millisecond, as every page writes them: an age
        # judged stale is written above its threshold.
        ages_from = round(scan_time, 3)
        appeared = stale = 0
        for member in members:
            name = member.name
            before = get_previous(name)
            if before is not None and before.member.version == member.version:
                cas_last_change = before.cas_last_change
            else:
                cas_last_change = scan_time
            timestamp = member.heartbeat_timestamp
            age = ages_from - timestamp
            track = get_track(name)
            if track is None or track.registered != member.registered_timestamp:
                track = HeartbeatTrack(member.registered_timestamp, timestamp,
                                       member.version, age, self.stale_after, self.stale_after)
            else:
                track.observe(timestamp, member.version, age)
            tracks[name] = track
            period = track.period
            threshold = thresholds.get(period)
            if threshold is None:
                threshold = thresholds[period] = threshold_of(period)
            track.threshold = threshold
            member_stale = is_stale(age, threshold)
            stale += member_stale
            view = MemberView(member, age, member_stale, get_ownership(name, 0.0),
                              cas_last_change, period, threshold)
            add(view)
            index[name] = view
            # Read here, where `before` and its member were just read for the CAS.
            if moved is not None and (before is None or before.stale != member_stale
                                      or before.member.state != member.state):
                moved.append((ring, before, view))
                appeared += before is None
        if changes is not None and len(members) - appeared != len(previous):
            changes.gone += [(ring, name) for name in previous if name not in index]
        counts = Counter(map(_state_of, members))
        state_counts = {state: counts.get(state, 0) for state in KNOWN_STATES}
        if counts.get("UNKNOWN"):
            state_counts["UNKNOWN"] = counts["UNKNOWN"]
        return RingView(
            ring=ring,
            members=tuple(views),
            state_counts=state_counts,
            stale_members=stale,
            oldest_heartbeat=min(map(_heartbeat_of, members), default=None),
            tokens=sum(map(len, map(_tokens_of, members))),
        )
