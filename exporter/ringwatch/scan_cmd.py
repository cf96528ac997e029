"""`ringwatch scan`: one scan of every table, for a person at 3 a.m. or a script.

Exit status: 0 no problem; 1 problems found (a stale member, a member in
JOINING or PENDING registered longer ago than --ring.stuck-after, items that
could not be decoded); 2 a table could not be scanned.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from typing import Any, TextIO

import orjson

from .config import Config, format_duration
from .ringjson import snapshot_json
from .ringproto import KNOWN_STATES, UNKNOWN_STATE
from .scanner import read_table
from .service import open_client
from .snapshot import MemberView, RingView, Snapshot, SnapshotBuilder, TableView

STUCK_STATES = ("JOINING", "PENDING")
EXIT_OK, EXIT_PROBLEMS, EXIT_SCAN_FAILED = 0, 1, 2


@dataclass(frozen=True)
class Problem:
    table: str
    ring: str
    member: str
    kind: str  # stale, stuck, decode
    what: str


def member_problems(view: MemberView, at: float, stuck_after: float) -> list[tuple[str, str]]:
    """(kind, description) of everything wrong with one member."""
    found = []
    if view.stale:
        found.append(("stale", f"STALE: no heartbeat for {format_age(view.heartbeat_age)}"))
    registered = view.member.registered_timestamp
    if view.member.state in STUCK_STATES and registered and at - registered > stuck_after:
        found.append(("stuck", f"STUCK in {view.member.state} for {format_age(at - registered)}"))
    return found


def find_problems(snapshot: Snapshot, at: float, stuck_after: float) -> list[Problem]:
    problems = []
    for table in snapshot.tables:
        for err in table.decode_errors:
            problems.append(Problem(table.table, err.ring, err.member, "decode",
                                    f"cannot decode ({err.reason}): {err.detail}"))
        for ring in table.rings:
            for view in ring.members:
                problems += [Problem(table.table, ring.ring, view.member.member, kind, what)
                             for kind, what in member_problems(view, at, stuck_after)]
    return problems


def exit_status(snapshot: Snapshot, problems: list[Problem]) -> int:
    if any(not t.ok for t in snapshot.tables):
        return EXIT_SCAN_FAILED
    return EXIT_PROBLEMS if problems else EXIT_OK


def format_age(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 120:
        return f"{sign}{seconds:.1f}s"
    if seconds < 7200:
        return f"{sign}{int(seconds // 60)}m{int(seconds % 60):02d}s"
    if seconds < 172800:
        return f"{sign}{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    return f"{sign}{int(seconds // 86400)}d{int(seconds % 86400 // 3600):02d}h"


def format_time(unix: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(unix))


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def by_heartbeat_age(members: Iterable[MemberView]) -> list[MemberView]:
    """Oldest heartbeat first; ties by member id so the order is stable."""
    return sorted(members, key=lambda v: (-v.heartbeat_age, v.member.member))


def state_summary(ring: RingView) -> str:
    """`2 ACTIVE, 1 LEAVING`: only states somebody is in, in Cortex's order."""
    order = (*KNOWN_STATES, UNKNOWN_STATE)
    parts = [f"{ring.state_counts[s]} {s}" for s in order if ring.state_counts.get(s)]
    return ", ".join(parts) or "no members"


def ring_summary(ring: RingView) -> str:
    return (f"ring {ring.ring}: {plural(len(ring.members), 'member')} ({state_summary(ring)}), "
            f"{ring.stale_members} stale, {plural(ring.tokens, 'token')}")


_HEADER = ("", "MEMBER", "ZONE", "STATE", "HEARTBEAT AGE", "VERSION", "TOKENS", "OWNERSHIP %",
           "PROBLEM")


def _write_columns(rows: list[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (c.ljust(w) for c, w in zip(row, widths, strict=True))
        out.write("  " + "  ".join(cells).rstrip() + "\n")


def write_table(table: TableView, config: Config, at: float, out: TextIO) -> None:
    if not table.ok:
        out.write(f"== table {table.table}: SCAN FAILED ({table.result}): {table.error}\n\n")
        return
    members = sum(len(r.members) for r in table.rings)
    out.write(f"== table {table.table}: {plural(len(table.rings), 'ring')}, "
              f"{plural(members, 'member')}, scanned in {table.scan_duration:.2f}s\n")
    for err in table.decode_errors:
        out.write(f"!  item {err.ring}/{err.member} SKIPPED, cannot decode "
                  f"({err.reason}): {err.detail}\n")
    if not table.rings:
        out.write("(no ring members in this table)\n")
    out.write("\n")
    for ring in table.rings:
        rows: list[tuple[str, ...]] = []
        for v in by_heartbeat_age(ring.members):
            problems = [what for _, what in member_problems(v, at, config.stuck_after)]
            if config.problems_only and not problems:
                continue
            m = v.member
            rows.append(("!" if problems else "", m.member, m.zone or "-", m.state,
                         format_age(v.heartbeat_age), str(m.version), str(len(m.tokens)),
                         f"{v.ownership * 100:.2f}", "; ".join(problems)))
        if not rows:  # only with --problems-only
            out.write(ring_summary(ring) + "; no problems\n")
            continue
        out.write(ring_summary(ring) + "\n")
        _write_columns([_HEADER, *rows], out)
        out.write("\n")


def write_verdict(snapshot: Snapshot, problems: list[Problem], status: int,
                  out: TextIO) -> None:
    failed = [t.table for t in snapshot.tables if not t.ok]
    kinds = {kind: sum(1 for p in problems if p.kind == kind)
             for kind in ("stale", "stuck", "decode")}
    detail = (f"{plural(kinds['stale'], 'stale member')}, {kinds['stuck']} stuck in "
              f"JOINING/PENDING, {plural(kinds['decode'], 'undecodable item')}")
    if failed:
        out.write(f"SCAN FAILED for {', '.join(failed)}; {detail} (exit {status})\n")
    elif problems:
        out.write(f"PROBLEMS: {detail} (exit {status})\n")
    else:
        members = sum(len(r.members) for t in snapshot.tables for r in t.rings)
        rings = sum(len(t.rings) for t in snapshot.tables)
        out.write(f"OK: {plural(members, 'member')} in {plural(rings, 'ring')}, "
                  f"no problems (exit {status})\n")


def write_text(snapshot: Snapshot, config: Config, at: float, problems: list[Problem],
               status: int, out: TextIO) -> None:
    judged = f"as of {format_time(at)}" + (
        f" (--at {config.at})" if config.at is not None else "")
    out.write(f"ringwatch scan {judged}; stale after {format_duration(config.stale_after)}, "
              f"stuck after {format_duration(config.stuck_after)}\n\n")
    for table in snapshot.tables:
        write_table(table, config, at, out)
    write_verdict(snapshot, problems, status, out)


def json_document(snapshot: Snapshot, config: Config, at: float, problems: list[Problem],
                  status: int) -> dict[str, Any]:
    document = snapshot_json(snapshot)
    by_member: dict[tuple[str, str, str], list[str]] = {}
    for p in problems:
        by_member.setdefault((p.table, p.ring, p.member), []).append(p.what)
    for table in document["tables"]:
        for ring in table["rings"]:
            members = []
            for member in ring["members"]:
                member["problems"] = by_member.get(
                    (table["table"], ring["ring"], member["member"]), [])
                if member["problems"] or not config.problems_only:
                    members.append(member)
            ring["members"] = members
    document["stuck_after_seconds"] = config.stuck_after
    document["problems"] = [asdict(p) for p in problems]
    document["exit_status"] = status
    return document


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
    # The snapshot is handed out through a list, not as asyncio.run's result: on
    # exit asyncio.run restores the SIGINT handler, and signal.signal() reprs the
    # handler it replaces, a partial holding the finished task and so the whole
    # snapshot (0.55 s of CPU at 10k members, twice the rest of the scan).
    scanned: list[Snapshot] = []

    async def scan() -> None:
        scanned.append(await scan_snapshot(config, config.at))

    asyncio.run(scan())
    snapshot = scanned[0]
    at = config.at if config.at is not None else snapshot.created_at
    problems = find_problems(snapshot, at, config.stuck_after)
    status = exit_status(snapshot, problems)
    if config.output == "json":
        document = json_document(snapshot, config, at, problems, status)
        out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        write_text(snapshot, config, at, problems, status, out)
    out.flush()
    return status
