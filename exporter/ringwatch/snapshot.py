"""Immutable view of every watched table after a scan.

A `Snapshot` is built from the scan's `TableRead`s and the previous snapshot
(CAS progress is judged across scans) and then only ever read: the HTTP side
serves it while the next one is built, and swapping is one reference
assignment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from .decoder import DecodeError, Member, decode_item
from .ownership import OwnershipCache
from .ringproto import KNOWN_STATES
from .scanner import TableRead


@dataclass(frozen=True, slots=True)
class MemberView:
    member: Member
    heartbeat_age: float
    stale: bool
    ownership: float
    cas_last_change: float


@dataclass(frozen=True)
class RingView:
    ring: str
    members: tuple[MemberView, ...]  # sorted by member id
    state_counts: dict[str, int]
    stale_members: int
    oldest_heartbeat: int | None
    tokens: int


@dataclass(frozen=True)
class TableView:
    table: str
    ok: bool
    result: str
    error: str | None
    attempted_at: float
    scan_duration: float
    # From the last successful scan (kept while later scans fail).
    scanned_at: float | None
    rings: tuple[RingView, ...]
    decode_errors: tuple[DecodeError, ...] = ()

    @property
    def members(self) -> Iterable[MemberView]:
        for ring in self.rings:
            yield from ring.members


@dataclass(frozen=True)
class Snapshot:
    created_at: float
    tables: tuple[TableView, ...] = ()
    stale_after: float = 60.0

    def table(self, name: str) -> TableView | None:
        for view in self.tables:
            if view.table == name:
                return view
        return None


@dataclass
class SnapshotBuilder:
    """Turns scan reads into snapshots; remembers what CAS tracking and the
    ownership cache need between scans."""

    stale_after: float
    ownership_cache: OwnershipCache = field(default_factory=OwnershipCache)

    def build(self, reads: Iterable[TableRead], previous: Snapshot | None,
              now: float) -> Snapshot:
        tables = []
        for read in reads:
            old = previous.table(read.table) if previous else None
            tables.append(self._table(read, old, now))
        live = {(t.table, r.ring) for t in tables for r in t.rings}
        self.ownership_cache.retain(live)
        return Snapshot(created_at=now, tables=tuple(tables), stale_after=self.stale_after)

    def _table(self, read: TableRead, old: TableView | None, now: float) -> TableView:
        if not read.ok:
            return TableView(
                table=read.table, ok=False, result=read.result, error=read.error,
                attempted_at=read.started_at, scan_duration=read.duration,
                scanned_at=old.scanned_at if old else None,
                rings=old.rings if old else (),
            )
        members: dict[str, list[Member]] = {}
        errors: list[DecodeError] = []
        for item in read.items:
            try:
                member = decode_item(item)
            except DecodeError as err:
                errors.append(err)
                continue
            members.setdefault(member.ring, []).append(member)
        previous_members: dict[tuple[str, str], MemberView] = {}
        if old is not None:
            previous_members = {(r.ring, v.member.member): v
                                for r in old.rings for v in r.members}
        scan_time = read.started_at
        rings = tuple(
            self._ring(read.table, ring, members[ring], previous_members, scan_time)
            for ring in sorted(members)
        )
        return TableView(
            table=read.table, ok=True, result=read.result, error=None,
            attempted_at=read.started_at, scan_duration=read.duration,
            scanned_at=read.started_at, rings=rings, decode_errors=tuple(errors),
        )

    def _ring(self, table: str, ring: str, members: list[Member],
              previous: dict[tuple[str, str], MemberView], scan_time: float) -> RingView:
        members.sort(key=lambda m: m.member)
        ownership = self.ownership_cache.ownership(
            (table, ring), {m.member: m.tokens for m in members})
        views = []
        stale_after = self.stale_after
        for member in members:
            before = previous.get((ring, member.member))
            if before is not None and before.member.version == member.version:
                cas_last_change = before.cas_last_change
            else:
                cas_last_change = scan_time
            age = scan_time - member.heartbeat_timestamp
            views.append(MemberView(
                member=member, heartbeat_age=age, stale=age > stale_after,
                ownership=ownership.get(member.member, 0.0), cas_last_change=cas_last_change,
            ))
        counts = Counter(m.state for m in members)
        state_counts = {state: counts.get(state, 0) for state in KNOWN_STATES}
        if counts.get("UNKNOWN"):
            state_counts["UNKNOWN"] = counts["UNKNOWN"]
        return RingView(
            ring=ring,
            members=tuple(views),
            state_counts=state_counts,
            stale_members=sum(1 for v in views if v.stale),
            oldest_heartbeat=min((m.heartbeat_timestamp for m in members), default=None),
            tokens=sum(len(m.tokens) for m in members),
        )

