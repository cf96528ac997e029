"""Synthetic ring members beating on a schedule, scanned on another, fed to a real
`SnapshotBuilder` with a fake clock: what the period learning and the stale
judgement see, without DynamoDB or sleeping."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cramjam

from ringwatch.cortex.proto import STATE_NUMBERS, InstanceDesc
from ringwatch.dynamodb.reader import TableRead
from ringwatch.snapshot.builder import SnapshotBuilder
from ringwatch.snapshot.model import MemberView, Snapshot

RING = "collectors/ring"
TABLE = "ring-table"


def member_item(
    member: str,
    timestamp: int,
    registered: int,
    *,
    ring: str = RING,
    state: str = "ACTIVE",
    version: int = 1,
    tokens: tuple[int, ...] = (1, 2),
) -> dict[str, Any]:
    """One item in Cortex's format (DynamoDB wire JSON, B as bytes)."""
    desc = InstanceDesc(
        addr=f"{member}:9095",
        timestamp=timestamp,
        state=STATE_NUMBERS[state],
        registered_timestamp=registered,
        tokens=list(tokens),
    )
    data = bytes(cramjam.snappy.compress_raw(desc.SerializeToString()))
    return {
        "RingKey": {"S": ring},
        "InstanceKey": {"S": member},
        "Data": {"B": data},
        "version": {"N": str(version)},
    }


@dataclass
class BeatingMember:
    """A member that heartbeats every `period` seconds from `first_beat` on.

    `clock_offset` is added to the timestamps it writes (negative: its clock is
    behind); `frozen_at` stops its beats; `delay(n)` delays beat n (latency)."""

    name: str
    period: float
    first_beat: float
    registered: int = 1_700_000_000
    clock_offset: float = 0.0
    frozen_at: float = math.inf
    delay: Callable[[int], float] = field(default=lambda n: 0.0)

    def last_beat(self, now: float) -> tuple[int, int] | None:
        """(timestamp written, beat number from 0) of the last beat written by `now`."""
        n = math.floor((min(now, self.frozen_at) - self.first_beat) / self.period)
        while n >= 0:
            at = self.first_beat + n * self.period + self.delay(n)
            if at <= now and at <= self.frozen_at:
                return math.floor(at + self.clock_offset), n
            n -= 1
        return None

    def item(self, now: float) -> dict[str, Any] | None:
        """The member's item as a scan at `now` reads it; None before its first beat.
        Each beat is one CAS write: the version is the number of beats."""
        beat = self.last_beat(now)
        if beat is None:
            return None
        return member_item(self.name, beat[0], self.registered, version=beat[1] + 1)


def table_read(
    items: list[dict[str, Any]], at: float, table: str = TABLE, ok: bool = True
) -> TableRead:
    """A finished read of `table` started at `at` (a failed one when not `ok`)."""
    if not ok:
        return TableRead(table=table, started_at=at, result="timeout", error="scan deadline")
    return TableRead(table=table, started_at=at, items=items)


def scan_members(
    builder: SnapshotBuilder,
    members: list[BeatingMember],
    scan_times: list[float],
    failed: frozenset[float] = frozenset(),
) -> list[Snapshot]:
    """Scans the members at each time (a failed scan at the times in `failed`)."""
    snapshots: list[Snapshot] = []
    previous = None
    for at in scan_times:
        items = [item for m in members if (item := m.item(at)) is not None]
        previous = builder.build([table_read(items, at, ok=at not in failed)], previous, at)
        snapshots.append(previous)
    return snapshots


def view_of(snapshot: Snapshot, member: str, table: str = TABLE) -> MemberView | None:
    """The member's view in the snapshot, or None when it is not there."""
    view = snapshot.table(table)
    assert view is not None
    return next((v for v in view.members if v.member.name == member), None)


def every(interval: float, start: float, end: float) -> list[float]:
    """Scan times from `start` every `interval` up to `end`."""
    return [start + i * interval for i in range(int((end - start) / interval) + 1)]
