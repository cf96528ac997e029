"""`ringwatch scan`: one scan of every table, for a person at 3 a.m. or a script.

Exit status: 0 no problem; 1 problems found (a stale member, a member in
JOINING or PENDING registered longer ago than --ring.stuck-after, items that
could not be decoded); 2 a table could not be scanned.
"""

from __future__ import annotations

import asyncio
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TextIO

import orjson

from .config import Config, format_duration
from .ringjson import snapshot_json
from .scanner import read_table
from .service import open_client
from .snapshot import MemberView, Snapshot, SnapshotBuilder

STUCK_STATES = ("JOINING", "PENDING")


@dataclass(frozen=True)
class Problem:
    table: str
    ring: str
    member: str
    what: str


def member_problems(view: MemberView, at: float, stuck_after: float) -> list[str]:
    found = []
    if view.stale:
        found.append(f"stale: last heartbeat {format_age(view.heartbeat_age)} ago")
    registered = view.member.registered_timestamp
    if view.member.state in STUCK_STATES and registered and at - registered > stuck_after:
        found.append(f"stuck in {view.member.state} for {format_age(at - registered)}")
    return found


def find_problems(snapshot: Snapshot, at: float, stuck_after: float) -> list[Problem]:
    problems = []
    for table in snapshot.tables:
        for err in table.decode_errors:
            problems.append(Problem(table.table, err.ring, err.member,
                                    f"cannot decode ({err.reason}): {err.detail}"))
        for ring in table.rings:
            for view in ring.members:
                problems += [Problem(table.table, ring.ring, view.member.member, what)
                             for what in member_problems(view, at, stuck_after)]
    return problems


def format_age(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 120:
        return f"{sign}{seconds:.1f}s"
    if seconds < 7200:
        return f"{sign}{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{sign}{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def write_text(snapshot: Snapshot, config: Config, at: float, out: TextIO) -> None:
    header = ("MEMBER", "ZONE", "STATE", "HEARTBEAT AGE", "VERSION", "TOKENS", "OWNERSHIP %",
              "PROBLEM")
    for table in snapshot.tables:
        if not table.ok:
            out.write(f"table {table.table}: SCAN FAILED ({table.result}): {table.error}\n\n")
            continue
        for err in table.decode_errors:
            out.write(f"table {table.table}: item {err.ring}/{err.member} skipped, "
                      f"cannot decode ({err.reason}): {err.detail}\n")
        if not table.rings:
            out.write(f"table {table.table}: no ring members\n\n")
        for ring in table.rings:
            views = sorted(ring.members, key=lambda v: (-v.heartbeat_age, v.member.member))
            rows = []
            for v in views:
                problems = member_problems(v, at, config.stuck_after)
                if config.problems_only and not problems:
                    continue
                rows.append((v.member.member, v.member.zone or "-", v.member.state,
                             format_age(v.heartbeat_age), str(v.member.version),
                             str(len(v.member.tokens)), f"{v.ownership * 100:.2f}",
                             "; ".join(problems)))
            stale = ring.stale_members
            out.write(f"table {table.table}  ring {ring.ring}  members {len(ring.members)}  "
                      f"stale {stale} (older than {format_duration(config.stale_after)})\n")
            if not rows:
                out.write("  (no members with problems)\n\n")
                continue
            widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
            for row in (header, *rows):
                cells = (c.ljust(w) for c, w in zip(row, widths, strict=True))
                out.write("  " + "  ".join(cells).rstrip() + "\n")
            out.write("\n")


async def scan_snapshot(config: Config, at: float | None = None) -> Snapshot:
    clock = (lambda: at) if at is not None else time.time
    async with AsyncExitStack() as stack:
        client = await open_client(config, stack)
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(read_table(
                client, table, config.ring_keys, consistent_read=config.consistent_read,
                scan_timeout=config.scan_timeout, wall_clock=clock))
                for table in config.tables]
    builder = SnapshotBuilder(stale_after=config.stale_after)
    return builder.build([t.result() for t in tasks], None, clock())


def run_scan(config: Config, out: TextIO = sys.stdout) -> int:
    snapshot = asyncio.run(scan_snapshot(config, config.at))
    at = config.at if config.at is not None else snapshot.created_at
    problems = find_problems(snapshot, at, config.stuck_after)
    if config.output == "json":
        document = snapshot_json(snapshot)
        document["problems"] = [p.__dict__ for p in problems]
        out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        write_text(snapshot, config, at, out)
        if problems:
            out.write(f"{len(problems)} problem(s) found.\n")
    out.flush()
    if any(not t.ok for t in snapshot.tables):
        return 2
    return 1 if problems else 0
