"""The one-shot scan's report: the text tables, the JSON document, the exit status; the
problems themselves are judged in `ringwatch.snapshot.problems`.

Exit status: 0 no problem; 1 problems found (a stale member, a member in
JOINING or PENDING registered longer ago than --ring.stuck-after, items that
could not be decoded); 2 a table could not be scanned; 3 the report could not
be written.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Protocol, TextIO

from ringwatch.render.ringjson import snapshot_json
from ringwatch.render.wording import (
    by_heartbeat_age,
    format_age,
    format_time,
    plural,
    stale_rule_text,
    state_summary,
)
from ringwatch.snapshot.model import RingView, Snapshot, TableView
from ringwatch.snapshot.problems import PROBLEM_KINDS, Problem, member_problems
from ringwatch.units import format_duration


class ReportOptions(Protocol):
    """What the report is asked for (`ringwatch scan`'s flags): plain values, no options."""

    @property
    def at(self) -> float | None:
        """The unix seconds ages are judged as of, if not now (`--at`)."""

    @property
    def stuck_after(self) -> float:
        """Seconds in JOINING or PENDING that make a problem (`--ring.stuck-after`)."""

    @property
    def problems_only(self) -> bool:
        """Whether only members with a problem are listed (`--problems-only`)."""


EXIT_OK, EXIT_PROBLEMS, EXIT_SCAN_FAILED, EXIT_OUTPUT_FAILED = 0, 1, 2, 3


def describe(problem: Problem) -> str:
    """The problem in words, for the text report and the JSON's `what`."""
    if problem.kind == "stale":
        return (
            f"STALE: no heartbeat for {format_age(problem.seconds)} "
            f"(threshold {format_duration(problem.limit)})"
        )
    if problem.kind == "stuck":
        return f"STUCK in {problem.state} for {format_age(problem.seconds)}"
    return f"cannot decode ({problem.reason}): {problem.detail}"


def exit_status(snapshot: Snapshot, problems: list[Problem]) -> int:
    """2 if a table could not be scanned, else 1 if problems were found, else 0."""
    if any(not t.ok for t in snapshot.tables):
        return EXIT_SCAN_FAILED
    return EXIT_PROBLEMS if problems else EXIT_OK


def ring_summary(ring: RingView) -> str:
    """One line about a ring: members by state, stale members, tokens."""
    return (
        f"ring {ring.ring}: {plural(len(ring.members), 'member')} ({state_summary(ring)}), "
        f"{ring.stale_members} stale, {plural(ring.tokens, 'token')}"
    )


_HEADER = (
    "",
    "MEMBER",
    "ZONE",
    "STATE",
    "HEARTBEAT AGE",
    "PERIOD",
    "STALE AFTER",
    "VERSION",
    "TOKENS",
    "OWNERSHIP %",
    "PROBLEM",
)


def _write_columns(rows: list[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (c.ljust(w) for c, w in zip(row, widths, strict=True))
        out.write("  " + "  ".join(cells).rstrip() + "\n")


def write_table(table: TableView, options: ReportOptions, at: float, out: TextIO) -> None:
    """One table's rings and members, oldest heartbeat first, problems marked."""
    if not table.ok:
        out.write(f"== table {table.table}: SCAN FAILED ({table.result}): {table.error}\n\n")
        return
    members = sum(len(r.members) for r in table.rings)
    out.write(
        f"== table {table.table}: {plural(len(table.rings), 'ring')}, "
        f"{plural(members, 'member')}, scanned in {table.scan_duration:.2f}s\n"
    )
    for err in table.decode_errors:
        out.write(
            f"!  item {err.ring}/{err.member} SKIPPED, cannot decode ({err.reason}): {err.detail}\n"
        )
    if not table.rings:
        out.write("(no ring members in this table)\n")
    out.write("\n")
    for ring in table.rings:
        rows: list[tuple[str, ...]] = []
        for v in by_heartbeat_age(ring.members):
            problems = [
                describe(p)
                for p in member_problems(table.table, ring.ring, v, at, options.stuck_after)
            ]
            if options.problems_only and not problems:
                continue
            m = v.member
            period = "-" if v.heartbeat_period is None else format_duration(v.heartbeat_period)
            rows.append(
                (
                    "!" if problems else "",
                    m.name,
                    m.zone or "-",
                    m.state,
                    format_age(v.heartbeat_age),
                    period,
                    format_duration(v.stale_threshold),
                    str(m.version),
                    str(len(m.tokens)),
                    f"{v.ownership * 100:.2f}",
                    "; ".join(problems),
                )
            )
        if not rows:  # only with --problems-only
            out.write(ring_summary(ring) + "; no problems\n")
            continue
        out.write(ring_summary(ring) + "\n")
        _write_columns([_HEADER, *rows], out)
        out.write("\n")


def write_verdict(snapshot: Snapshot, problems: list[Problem], status: int, out: TextIO) -> None:
    """The last line: OK, PROBLEMS or SCAN FAILED, with the counts by kind."""
    failed = [t.table for t in snapshot.tables if not t.ok]
    kinds = {kind: sum(1 for p in problems if p.kind == kind) for kind in PROBLEM_KINDS}
    detail = (
        f"{plural(kinds['stale'], 'stale member')}, {kinds['stuck']} stuck in "
        f"JOINING/PENDING, {plural(kinds['decode'], 'undecodable item')}"
    )
    if failed:
        out.write(f"SCAN FAILED for {', '.join(failed)}; {detail} (exit {status})\n")
    elif problems:
        out.write(f"PROBLEMS: {detail} (exit {status})\n")
    else:
        members = sum(len(r.members) for t in snapshot.tables for r in t.rings)
        rings = sum(len(t.rings) for t in snapshot.tables)
        out.write(
            f"OK: {plural(members, 'member')} in {plural(rings, 'ring')}, "
            f"no problems (exit {status})\n"
        )


def write_text(
    snapshot: Snapshot,
    options: ReportOptions,
    at: float,
    problems: list[Problem],
    status: int,
    out: TextIO,
) -> None:
    """The whole text report: how members are judged, every table, the verdict."""
    judged = f"as of {format_time(at)}" + (
        f" (--at {options.at})" if options.at is not None else ""
    )
    learned = any(v.heartbeat_period is not None for t in snapshot.tables for v in t.members)
    stale = (
        f"stale when the heartbeat is older than {stale_rule_text(snapshot)}"
        if learned
        else f"stale after {format_duration(snapshot.stale_after)} (one scan learns no "
        f"heartbeat period)"
    )
    out.write(
        f"ringwatch scan {judged}; {stale}, stuck after {format_duration(options.stuck_after)}\n\n"
    )
    for table in snapshot.tables:
        write_table(table, options, at, out)
    write_verdict(snapshot, problems, status, out)


def json_document(
    snapshot: Snapshot, options: ReportOptions, at: float, problems: list[Problem], status: int
) -> dict[str, Any]:
    """The `/ring.json` shape plus each member's problems, the problems and the exit status."""
    document = snapshot_json(snapshot)
    by_member: dict[tuple[str, str, str], list[str]] = {}
    for p in problems:
        by_member.setdefault((p.table, p.ring, p.member), []).append(describe(p))
    no_problems: list[str] = []
    for table in document["tables"]:
        for ring in table["rings"]:
            members = ring["members"]
            if by_member:
                key = (table["table"], ring["ring"])
                for member in members:
                    member["problems"] = by_member.get((*key, member["member"]), no_problems)
            else:
                for member in members:
                    member["problems"] = no_problems
            if options.problems_only:
                ring["members"] = [m for m in members if m["problems"]]
    document["stuck_after_seconds"] = options.stuck_after
    document["problems"] = [{**asdict(p), "what": describe(p)} for p in problems]
    document["exit_status"] = status
    return document
