"""Builds a `Snapshot` from one scan's table reads and the previous snapshot."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
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
from ringwatch.snapshot.model import MemberView, RingView, Snapshot, TableRead, TableView
from ringwatch.snapshot.problems import StaleRule, is_stale

_by_member = attrgetter("name")

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
    # The last PERIOD_WINDOW accepted gaps, whole seconds, oldest first. An array
    # (no object per gap for the cyclic GC to walk).
    gaps: array[int] = field(default_factory=lambda: array("Q"))
    period: int | None = None

    def observe(self, timestamp: int, version: int, age: float, cap: float) -> None:
        """One scan saw this heartbeat and version at this age (same registration);
        `cap` is the longest period ringwatch believes (--ring.stale-after)."""
        if timestamp == self.timestamp:
            self.max_age = max(self.max_age, age)
            return
        step = timestamp - self.timestamp
        if step > 0:  # a clock that went back says nothing about the period
            self._add_gap(step, max(version - self.version, 1), cap)
        self.timestamp = timestamp
        self.version = version
        self.max_age = age

    def _add_gap(self, step: int, beats: int, cap: float) -> None:
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
        self.period = min(sorted(gaps)[(len(gaps) - 1) // 2], ceil(cap))


def _first_of_each(found: list[Member], errors: list[DecodeError]) -> list[Member]:
    """One member per id, the first read; each repeat becomes a `duplicate` error.

    A snapshot holds one (ring, member): a repeated item (pages that repeat, keys
    that differ only in encoding) would double every total."""
    kept: list[Member] = []
    seen: set[str] = set()
    for member in found:
        if member.name in seen:
            errors.append(
                DecodeError(
                    "duplicate",
                    "the same ring and member again; the first item is kept",
                    member.ring,
                    member.name,
                )
            )
            continue
        seen.add(member.name)
        kept.append(member)
    return kept


def _changes(
    previous: dict[str, dict[str, MemberView]], index: dict[str, dict[str, MemberView]]
) -> tuple[list[tuple[str, MemberView | None, MemberView]], list[tuple[str, str]]]:
    """What changed in a table since its previous view: each (ring, was, now) of a member
    that appeared (was None) or whose state or staleness changed, and each (ring,
    member id) gone (`TableView.changes`, `.gone`)."""
    appeared_or_changed = []
    for ring, views in index.items():
        before = previous.get(ring, {})
        for name, view in views.items():
            was = before.get(name)
            if was is None or was.stale != view.stale or was.member.state != view.member.state:
                appeared_or_changed.append((ring, was, view))
    gone = [
        (ring, name)
        for ring, before in previous.items()
        for name in before
        if name not in index.get(ring, {})
    ]
    return appeared_or_changed, gone


def _ring_view(ring: str, views: list[MemberView]) -> RingView:
    """A ring's view: its members (sorted by id) and their roll-ups."""
    members = [view.member for view in views]
    counts = Counter(member.state for member in members)
    state_counts = {state: counts.get(state, 0) for state in KNOWN_STATES}
    if counts.get("UNKNOWN"):
        state_counts["UNKNOWN"] = counts["UNKNOWN"]
    return RingView(
        ring=ring,
        members=tuple(views),
        state_counts=state_counts,
        stale_members=sum(view.stale for view in views),
        oldest_heartbeat=min((member.heartbeat_timestamp for member in members), default=None),
        tokens=sum(len(member.tokens) for member in members),
    )


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
        default_factory=dict, repr=False
    )
    # table -> ring -> member -> its heartbeats; kept while a table's scans fail
    _tracks: dict[str, dict[str, dict[str, HeartbeatTrack]]] = field(
        default_factory=dict, repr=False
    )
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

    def build(self, reads: Iterable[TableRead], previous: Snapshot | None, now: float) -> Snapshot:
        """The snapshot of these reads (raw items, or pages `decode_page` decoded)."""
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
        return Snapshot(
            created_at=now,
            tables=tuple(tables),
            stale_after=self.stale_after,
            stale_periods=self.stale_periods,
            stale_floor=self.stale_floor,
        )

    def _table(self, read: TableRead, old: TableView | None, now: float) -> TableView:
        """One table's view: its rings as this read found them, or the last good ones."""
        if not read.ok:
            return TableView(
                table=read.table,
                ok=False,
                result=read.result,
                error=read.error,
                attempted_at=read.started_at,
                scan_duration=read.duration,
                scanned_at=old.scanned_at if old else None,
                rings=old.rings if old else (),
            )
        members, errors = self._members_by_ring(read)
        previous = self._member_index(old)
        old_tracks = self._tracks.get(read.table, {})
        tracks: dict[str, dict[str, HeartbeatTrack]] = {}
        index: dict[str, dict[str, MemberView]] = {}
        rings = []
        for ring in sorted(members):
            found = sorted(members[ring], key=_by_member)
            tracks[ring] = self._tracked(found, old_tracks.get(ring, {}), read.started_at)
            views = self._judged(
                (read.table, ring), found, previous.get(ring, {}), tracks[ring], read.started_at
            )
            index[ring] = {view.member.name: view for view in views}
            rings.append(_ring_view(ring, views))
        self._tracks[read.table] = tracks
        # Noted only against a previous view of the table (a first scan changes all).
        changes, gone = _changes(previous, index) if old is not None else ([], [])
        view = TableView(
            table=read.table,
            ok=True,
            result=read.result,
            error=None,
            attempted_at=read.started_at,
            scan_duration=read.duration,
            scanned_at=read.started_at,
            rings=tuple(rings),
            decode_errors=tuple(errors),
            changes=tuple(changes),
            gone=tuple(gone),
        )
        self._indexes[read.table] = (view, index)
        return view

    def _members_by_ring(
        self, read: TableRead
    ) -> tuple[dict[str, list[Member]], list[DecodeError]]:
        """The read's members by ring (one per id), and the items that could not be used."""
        members: dict[str, list[Member]] = {}
        errors: list[DecodeError] = []
        for item in read.items:
            # Items `decode_page` decoded as their page arrived, else raw items.
            member = item if type(item) in (Member, DecodeError) else self._decode_one(item)
            if type(member) is DecodeError:
                errors.append(member)
            elif type(member) is Member:
                members.setdefault(member.ring, []).append(member)
        for ring, found in members.items():
            if len({m.name for m in found}) != len(found):
                members[ring] = _first_of_each(found, errors)
        return members, errors

    def _member_index(self, old: TableView | None) -> dict[str, dict[str, MemberView]]:
        """ring -> member -> view of `old`; the one built with `old` if it is ours."""
        if old is None:
            return {}
        built = self._indexes.get(old.table)
        if built is not None and built[0] is old:
            return built[1]
        return {r.ring: {v.member.name: v for v in r.members} for r in old.rings}

    def _tracked(
        self, members: list[Member], old: dict[str, HeartbeatTrack], scan_time: float
    ) -> dict[str, HeartbeatTrack]:
        """Each member's heartbeat track: carried on from the last scan with what this
        one saw, or new for a member not seen before or registered again."""
        tracks = {}
        for member in members:
            track = old.get(member.name)
            age = scan_time - member.heartbeat_timestamp
            if track is None or track.registered != member.registered_timestamp:
                track = HeartbeatTrack(
                    member.registered_timestamp,
                    member.heartbeat_timestamp,
                    member.version,
                    age,
                    threshold=self.stale_after,
                )
            else:
                track.observe(member.heartbeat_timestamp, member.version, age, self.stale_after)
            tracks[member.name] = track
        return tracks

    def _judged(
        self,
        key: tuple[str, str],
        members: list[Member],
        before: dict[str, MemberView],
        tracks: dict[str, HeartbeatTrack],
        scan_time: float,
    ) -> list[MemberView]:
        """Each member as this scan judges it: its age, stale or not against the threshold
        of its own period, its share of the tokens, when its CAS version last moved."""
        ownership = self.ownership_cache.ownership(key, {m.name: m.tokens for m in members})
        # Members share a few periods: each threshold computed once (build at 10k members,
        # benchmarks/member_costs.py: 2.5 -> 2.0 us a member).
        threshold_of = cache(self.stale_rule.threshold)
        # Ages from the scan time to the millisecond, as every page writes them: an age
        # judged stale is written above its threshold.
        ages_from = round(scan_time, 3)
        views = []
        for member in members:
            track = tracks[member.name]
            track.threshold = threshold = threshold_of(track.period)
            age = ages_from - member.heartbeat_timestamp
            was = before.get(member.name)
            if was is not None and was.member.version == member.version:
                cas_last_change = was.cas_last_change
            else:
                cas_last_change = scan_time
            views.append(
                MemberView(
                    member,
                    age,
                    is_stale(age, threshold),
                    ownership.get(member.name, 0.0),
                    cas_last_change,
                    track.period,
                    threshold,
                )
            )
        return views
