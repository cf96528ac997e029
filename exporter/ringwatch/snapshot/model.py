"""Immutable view of every watched table after a scan.

A `Snapshot` is built from the scan's `TableRead`s and the previous snapshot
(CAS progress is judged across scans) and then only ever read: the HTTP side
serves it while the next one is built, and swapping is one reference
assignment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from ringwatch.cortex.decode import DecodeError, Member


class TableRead(Protocol):
    """What the builder needs of one table's read (`ringwatch.dynamodb.reader.TableRead`).

    `items` are item dicts, or the `Member`s and `DecodeError`s `decode_page` made of them."""

    table: str
    started_at: float
    duration: float
    items: list[Any]
    result: str
    error: str | None

    @property
    def ok(self) -> bool:
        """True when the whole table was read."""


class MemberView(msgspec.Struct, frozen=True, gc=False):
    """One member as of a scan, with what ringwatch judged of it."""

    # A msgspec Struct for the reasons `Member` is one (made once per member per scan).

    member: Member
    heartbeat_age: float
    stale: bool
    ownership: float
    cas_last_change: float
    # The heartbeat period ringwatch learned (None until known) and the stale
    # threshold it gives (snapshot.problems.StaleRule).
    heartbeat_period: float | None = None
    stale_threshold: float = 60.0


@dataclass(frozen=True)
class RingView:
    """One ring after a scan: its members (sorted by id) and their roll-ups."""

    ring: str
    members: tuple[MemberView, ...]  # sorted by member id
    state_counts: dict[str, int]
    stale_members: int
    oldest_heartbeat: int | None
    tokens: int


@dataclass(frozen=True)
class TableView:
    """One table after a scan: its rings, or why the scan failed (then the last good rings)."""

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
    # Since the table's view in the previous snapshot (empty when there was none, or
    # this scan failed): each (ring, was, now) of a member that appeared (was None)
    # or whose state or staleness changed, and each (ring, member id) gone.
    changes: tuple[tuple[str, MemberView | None, MemberView], ...] = ()
    gone: tuple[tuple[str, str], ...] = ()

    @property
    def members(self) -> Iterable[MemberView]:
        """Every member of every ring of the table."""
        for ring in self.rings:
            yield from ring.members


@dataclass(frozen=True)
class Snapshot:
    """Every watched table as of one scan, and the stale rule it was judged by."""

    created_at: float
    tables: tuple[TableView, ...] = ()
    stale_after: float = 60.0  # the cap, and the threshold while a period is unknown
    stale_periods: int = 4
    stale_floor: float = 20.0

    def table(self, name: str) -> TableView | None:
        """The view of table `name`, or None."""
        for view in self.tables:
            if view.table == name:
                return view
        return None
