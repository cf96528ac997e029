"""Builds a `Snapshot` from one scan's table reads and the previous snapshot."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter

from ringwatch.cortex.decode import DecodeError, ItemDecoder, Member, unexpected_error
from ringwatch.cortex.ownership import OwnershipCache
from ringwatch.cortex.proto import KNOWN_STATES
from ringwatch.gcpause import gc_paused
from ringwatch.snapshot.model import MemberView, RingView, ScanResult, Snapshot, TableView

_by_member = attrgetter("member")


def _first_of_each(found: list[Member], errors: list[DecodeError]) -> list[Member]:
    """One member per id, the first read; each repeat becomes a `duplicate` error.

    A snapshot holds one (ring, member): a repeated item (pages that repeat, keys
    that differ only in encoding) would double every total."""
    kept: list[Member] = []
    seen: set[str] = set()
    for member in found:
        if member.member in seen:
            errors.append(DecodeError("duplicate", "the same ring and member again; the "
                                      "first item is kept", member.ring, member.member))
            continue
        seen.add(member.member)
        kept.append(member)
    return kept


@dataclass
class SnapshotBuilder:
    """Turns scan reads into snapshots; remembers what CAS tracking and the
    ownership cache need between scans."""

    stale_after: float
    ownership_cache: OwnershipCache = field(default_factory=OwnershipCache)
    decoder: ItemDecoder = field(default_factory=ItemDecoder)
    # table -> (the TableView last built, its members by ring and id)
    _indexes: dict[str, tuple[TableView, dict[str, dict[str, MemberView]]]] = field(
        default_factory=dict, repr=False)

    def build(self, reads: Iterable[ScanResult], previous: Snapshot | None,
              now: float) -> Snapshot:
        with gc_paused():
            return self._build(reads, previous, now)

    def _build(self, reads: Iterable[ScanResult], previous: Snapshot | None,
               now: float) -> Snapshot:
        tables = []
        self.decoder.start_scan()
        for read in reads:
            old = previous.table(read.table) if previous else None
            tables.append(self._table(read, old, now))
        live = {(t.table, r.ring) for t in tables for r in t.rings}
        self.ownership_cache.retain(live)
        names = {t.table for t in tables}
        self._indexes = {k: v for k, v in self._indexes.items() if k in names}
        return Snapshot(created_at=now, tables=tuple(tables), stale_after=self.stale_after)

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
        decode = self.decoder.decode
        for item in read.items:
            try:
                member = decode(item)
            except DecodeError as err:
                errors.append(err)
                continue
            except Exception as exc:  # a decoder bug costs this item, not the scan
                errors.append(unexpected_error(item, exc))
                continue
            members.setdefault(member.ring, []).append(member)
        for ring, found in members.items():
            if len({m.member for m in found}) != len(found):
                members[ring] = _first_of_each(found, errors)
        previous = self._member_index(old)
        index: dict[str, dict[str, MemberView]] = {}
        scan_time = read.started_at
        rings = tuple(
            self._ring(read.table, ring, members[ring], previous.get(ring, {}),
                       index.setdefault(ring, {}), scan_time)
            for ring in sorted(members)
        )
        view = TableView(
            table=read.table, ok=True, result=read.result, error=None,
            attempted_at=read.started_at, scan_duration=read.duration,
            scanned_at=read.started_at, rings=rings, decode_errors=tuple(errors),
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
        return {r.ring: {v.member.member: v for v in r.members} for r in old.rings}

    def _ring(self, table: str, ring: str, members: list[Member],
              previous: dict[str, MemberView], index: dict[str, MemberView],
              scan_time: float) -> RingView:
        members.sort(key=_by_member)
        ownership = self.ownership_cache.ownership(
            (table, ring), {m.member: m.tokens for m in members})
        views = []
        add = views.append
        stale_after = self.stale_after
        get_previous = previous.get
        get_ownership = ownership.get
        stale = 0
        for member in members:
            name = member.member
            before = get_previous(name)
            if before is not None and before.member.version == member.version:
                cas_last_change = before.cas_last_change
            else:
                cas_last_change = scan_time
            age = scan_time - member.heartbeat_timestamp
            is_stale = age > stale_after
            stale += is_stale
            view = MemberView(member, age, is_stale, get_ownership(name, 0.0), cas_last_change)
            add(view)
            index[name] = view
        counts = Counter(m.state for m in members)
        state_counts = {state: counts.get(state, 0) for state in KNOWN_STATES}
        if counts.get("UNKNOWN"):
            state_counts["UNKNOWN"] = counts["UNKNOWN"]
        return RingView(
            ring=ring,
            members=tuple(views),
            state_counts=state_counts,
            stale_members=stale,
            oldest_heartbeat=min((m.heartbeat_timestamp for m in members), default=None),
            tokens=sum(len(m.tokens) for m in members),
        )
