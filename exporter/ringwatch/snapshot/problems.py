"""What is wrong with a member, judged once for every page: the stale threshold
(against the member's own heartbeat period) and the problems `ringwatch scan`,
`/ring`, `/ring.json`, the roll-ups and the logs report.

Kinds and numbers only; the words for people are the renderers' business.
"""

from __future__ import annotations

from dataclasses import dataclass

from ringwatch.snapshot.model import MemberView, Snapshot

STUCK_STATES = ("JOINING", "PENDING")
PROBLEM_KINDS = ("stale", "stuck", "decode")


@dataclass(frozen=True, slots=True)
class StaleRule:
    """How old a heartbeat may get before its member is stale (docs/staleness.md):
    `periods` of the member's own heartbeat period, at least `floor`, at most
    `cap` (never below two periods); `cap` while the period is not known."""

    cap: float = 60.0
    periods: int = 4
    floor: float = 20.0

    def threshold(self, period: float | None) -> float:
        """The stale threshold, in seconds, of a member with this heartbeat period."""
        if period is None:
            return float(self.cap)
        return float(min(max(self.periods * period, self.floor), max(self.cap, 2 * period)))


def is_stale(heartbeat_age: float, threshold: float) -> bool:
    """The one stale judgement: the heartbeat is older than the threshold."""
    return heartbeat_age > threshold


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong: a stale or stuck member, or an item that cannot be decoded.

    `seconds` is the heartbeat age (stale) or the time since registration
    (stuck), `limit` the threshold it crossed; `state` the member's state;
    `reason` and `detail` say why an item could not be decoded."""

    table: str
    ring: str
    member: str
    kind: str  # one of PROBLEM_KINDS
    seconds: float = 0.0
    limit: float = 0.0
    state: str = ""
    reason: str = ""
    detail: str = ""


def member_problems(table: str, ring: str, view: MemberView, at: float,
                    stuck_after: float) -> list[Problem]:
    """Everything wrong with one member: stale (as judged at its scan), stuck in
    JOINING or PENDING for longer than `stuck_after` as of `at`."""
    found = []
    m = view.member
    if view.stale:
        found.append(Problem(table, ring, m.name, "stale", view.heartbeat_age,
                             view.stale_threshold, m.state))
    registered = m.registered_timestamp
    if m.state in STUCK_STATES and registered and at - registered > stuck_after:
        found.append(Problem(table, ring, m.name, "stuck", at - registered, stuck_after,
                             m.state))
    return found


def find_problems(snapshot: Snapshot, at: float, stuck_after: float) -> list[Problem]:
    """Every problem of every table: undecodable items first, then members in order."""
    problems = []
    for table in snapshot.tables:
        for err in table.decode_errors:
            problems.append(Problem(table.table, err.ring, err.member, "decode",
                                    reason=err.reason, detail=err.detail))
        for ring in table.rings:
            for view in ring.members:
                if view.stale or view.member.state in STUCK_STATES:
                    problems += member_problems(table.table, ring.ring, view, at, stuck_after)
    return problems
