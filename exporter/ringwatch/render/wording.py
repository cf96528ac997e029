"""Small text formatting shared by the scan report and the /ring page."""

from __future__ import annotations

import time
from collections.abc import Iterable
from operator import attrgetter

from ringwatch.cortex.proto import KNOWN_STATES, UNKNOWN_STATE
from ringwatch.snapshot.model import MemberView, RingView, Snapshot
from ringwatch.units import format_duration


def format_age(seconds: float) -> str:
    """An age for a person: to a tenth of a second, at most its two largest units
    (`42.3s`, `3m5s`, `2h10m`, `3d4h`); negative under clock skew."""
    return format_duration(seconds, decimals=1, parts=2)


def format_time(unix: float) -> str:
    """`2024-05-01 12:00:00Z`; a time no calendar date fits (an int64 from an item)
    is shown as its unix seconds."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(unix))
    except (OverflowError, OSError, ValueError):
        return f"unix {unix} (out of calendar range)"


def plural(count: int, word: str) -> str:
    """`1 member`, `2 members`."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


_member_id = attrgetter("member.name")
_heartbeat_age = attrgetter("heartbeat_age")


def by_heartbeat_age(members: Iterable[MemberView]) -> list[MemberView]:
    """Oldest heartbeat first; ties by member id so the order is stable."""
    # Two C-keyed sorts, no tuple per member: by id, then (stably, reversed) by age.
    ordered = sorted(members, key=_member_id)
    ordered.sort(key=_heartbeat_age, reverse=True)
    return ordered


def state_summary(ring: RingView) -> str:
    """`2 ACTIVE, 1 LEAVING`: only states somebody is in, in Cortex's order."""
    order = (*KNOWN_STATES, UNKNOWN_STATE)
    parts = [f"{ring.state_counts[s]} {s}" for s in order if ring.state_counts.get(s)]
    return ", ".join(parts) or "no members"


def stale_rule_text(snapshot: Snapshot) -> str:
    """How the snapshot's members were judged stale: what a heartbeat must be older than."""
    cap = format_duration(snapshot.stale_after)
    if snapshot.stale_floor >= snapshot.stale_after:  # the floor is the cap: one threshold
        return f"{cap} (or 2 of its own heartbeat periods, once known, if longer)"
    return (
        f"{snapshot.stale_periods} of its own heartbeat periods, at least "
        f"{format_duration(snapshot.stale_floor)} and at most {cap} (or 2 periods if "
        f"longer); {cap} while its period is not yet known"
    )
