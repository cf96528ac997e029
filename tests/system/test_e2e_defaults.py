"""End to end at the mixin's DEFAULT `_config`, every interval 5 s.

The same chain as test_e2e.py (e2e/stack.py), but the rules are the mixin rendered with its
defaults (only the ringwatch selector set), ringwatch's stale flags at their defaults too, and
every cadence at 5 s: 6 ingesters heartbeating every 5 s, 3 store-gateways every 15 s, ringwatch
scanning, Prometheus scraping and evaluating every 5 s, Alertmanager's group_wait 1 s with the
mixin's inhibition rules. One stack serves every scenario, in order: the ring starting up and a
clean rolling restart page nothing; a frozen member pages critical within 60 s of its last
heartbeat and resolves within 60 s of heartbeating again; the 15 s ring pages nothing all along;
Alertmanager inhibits as the mixin ships. Takes about 3 minutes: `pytest -m "not defaults"`
leaves it out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from e2e.stack import (
    JOB,
    RING,
    SLOW_RING,
    Notification,
    Stack,
    Timings,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.defaults]
E2E_NAME = "e2e defaults"
START_TIMEOUT = 120
TABLE = "e2e-defaults-ring"
TIMINGS = Timings(
    members=6,
    zones=3,
    heartbeat_period=5.0,
    scan_interval=5.0,
    scrape_interval=5.0,
    evaluation_interval=5.0,
    group_wait=1.0,
    group_interval=1.0,
    slow_members=3,
    slow_heartbeat_period=15.0,
)
DEFAULTS = {"ringwatchSelector": f'job="{JOB}"'}  # nothing else: the mixin's defaults
STALE, CAS = "CortexRingMemberHeartbeatStale", "CortexRingMemberCASStalled"
MEMBER_ALERT_PREFIX = "CortexRing"
PAGE_WITHIN = 50.0  # at the defaults, every interval 5 s
RESOLVE_WITHIN = 60.0
NOISE = 5.0  # a loaded 2-core machine


def make_stack(tmp: Path) -> Stack:
    """The stack with the mixin rendered at its default _config, every interval 5 s."""
    return Stack(tmp, timings=TIMINGS, mixin_config=DEFAULTS, table=TABLE, stale_flags=())


def member_alerts(stack: Stack) -> list[dict]:
    """Member and ring alerts firing in Prometheus, or pending if they judge staleness (a member
    in a transitional state is pending CortexRingRolloutStalled for its 10m-15m as it should)."""
    return [
        a
        for a in stack.prometheus_alerts()
        if a["labels"]["alertname"].startswith(MEMBER_ALERT_PREFIX)
        and (a["state"] == "firing" or a["labels"]["alertname"] != "CortexRingRolloutStalled")
    ]


def member_pages(notes: list[Notification]) -> list[str]:
    return [n.line() for n in notes if n.alertname.startswith(MEMBER_ALERT_PREFIX)]


def periods(stack: Stack, ring: str) -> dict[str, float]:
    return {
        r["metric"]["member"]: float(r["value"][1])
        for r in stack.query(
            f'member:ringwatch_member_heartbeat_period_seconds:max{{ring="{ring}"}}'
        )
    }


def watch_quiet(stack: Stack, seconds: float) -> list[dict]:
    """Member alerts seen pending or firing in Prometheus while polling for `seconds`."""
    seen: list[dict] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen += member_alerts(stack)
        time.sleep(1.0)
    return seen


def test_ring_starting_up_pages_nothing_and_periods_are_learned(
    stack: Stack, say: Callable[[str], None]
) -> None:
    record = "member:ringwatch_member_heartbeat_stale_threshold_seconds:max"
    thresholds = [
        r["expr"]
        for g in stack.rendered["prometheus_rules"]["groups"]
        for r in g["rules"]
        if r.get("record") == record
    ]
    assert thresholds and all(
        "ringwatch_member_heartbeat_stale_threshold_seconds{" in e for e in thresholds
    )
    started = time.monotonic()
    first = wait_until(
        lambda: (p := periods(stack, RING)) and len(p) == TIMINGS.members and p,
        60,
        "every ingester's heartbeat period to be known",
    )
    # The first step of a member that registers may hold two writes a second apart (PENDING, then
    # ACTIVE): its first period may be short, and must settle on the real one.
    learned = wait_until(
        lambda: (p := periods(stack, RING)) and set(p.values()) <= {5.0, 6.0} and p,
        60,
        "every ingester's heartbeat period to be 5s",
    )
    say(
        f"ingesters' periods known {time.monotonic() - started:.1f}s after the stack was up: "
        f"first {sorted(set(first.values()))}, settled {sorted(set(learned.values()))}"
    )
    assert len(learned) == TIMINGS.members
    assert member_alerts(stack) == []
    assert member_pages(stack.webhook.since(0)) == []


def test_clean_rolling_restart_pages_nothing(stack: Stack, say: Callable[[str], None]) -> None:
    mark = stack.webhook.mark()
    started = time.time()
    seen = []
    for name in ("ingester-0", "ingester-2", "ingester-4"):
        before = stack.member(name)["registered_timestamp"]
        stack.act(name, "restart", duration="10s")  # LEAVING for the final sleep, heartbeating

        def back(name: str = name, before: float = before) -> bool:
            m = stack.member(name)
            return m["state"] == "ACTIVE" and m["registered_timestamp"] != before

        deadline = time.monotonic() + 30
        while not back():
            assert time.monotonic() < deadline, f"{name} did not come back ACTIVE"
            seen += member_alerts(stack)
            time.sleep(0.5)
    seen += watch_quiet(stack, 25)  # longer than for: 15s plus a scan, scrape and evaluation
    say(
        f"rolling restart of 3 ingesters took {time.time() - started:.1f}s; member alerts "
        f"pending or firing: {seen or 'none'}"
    )
    assert seen == []
    assert member_pages(stack.webhook.since(mark)) == []


def test_frozen_member_pages_critical_within_50s_and_resolves_within_60s_of_heartbeating(
    stack: Stack, say: Callable[[str], None]
) -> None:
    name = "ingester-3"
    assert periods(stack, RING).get(name) in (5.0, 6.0), "its period must be known by now"
    mark = stack.webhook.mark()
    stack.act(name, "freeze")
    member = wait_until(
        lambda: (m := stack.member(name)) and not m["writing"] and m,
        10,
        f"{name}'s last write to finish",
    )
    last_heartbeat = member["last_heartbeat"]
    page = stack.webhook.wait_for(
        lambda n: n.status == "firing" and n.member == name,
        mark,
        PAGE_WITHIN + NOISE + 10,
        f"a page for {name}",
    )
    delay = page.received - last_heartbeat
    say(
        f"frozen member: last heartbeat -> first page ({page.alertname}, "
        f"{page.labels['severity']}) {delay:.1f}s (target <= {PAGE_WITHIN:g}s)"
    )

    stack.act(name, "thaw")
    beating = wait_until(
        lambda: (m := stack.member(name))["last_heartbeat"] > last_heartbeat and m,
        15,
        f"{name} to heartbeat again",
    )
    back = stack.webhook.wait_for(
        lambda n: n.status == "resolved" and n.member == name and n.alertname == page.alertname,
        mark,
        RESOLVE_WITHIN + NOISE + 10,
        f"{page.alertname} resolved for {name}",
    )
    resolve = back.received - beating["last_heartbeat"]
    say(
        f"frozen member: heartbeating again -> resolved {resolve:.1f}s "
        f"(target <= {RESOLVE_WITHIN:g}s)"
    )

    assert (page.alertname, page.labels["severity"]) == (STALE, "critical")
    assert page.labels["ring"] == RING and page.labels["table"] == TABLE
    assert delay <= PAGE_WITHIN
    assert resolve <= RESOLVE_WITHIN
    # Only that member paged.
    assert {
        n.member for n in stack.webhook.since(mark) if n.alertname.startswith(MEMBER_ALERT_PREFIX)
    } == {name}


def test_store_gateways_heartbeating_every_15s_paged_nothing_all_along(
    stack: Stack, say: Callable[[str], None]
) -> None:
    slow = wait_until(
        lambda: (p := periods(stack, SLOW_RING)) and len(p) == TIMINGS.slow_members and p,
        60,
        "the store-gateways' period to be learned",
    )
    thresholds = {
        r["metric"]["member"]: float(r["value"][1])
        for r in stack.query(
            f'member:ringwatch_member_heartbeat_stale_threshold_seconds:max{{ring="{SLOW_RING}"}}'
        )
    }
    say(
        f"store-gateways: periods {sorted(set(slow.values()))}, stale thresholds "
        f"{sorted(set(thresholds.values()))}"
    )
    assert all(p >= 14 for p in slow.values())
    assert all(t >= 60 for t in thresholds.values())
    notes = [n for n in stack.webhook.since(0) if n.labels.get("ring") == SLOW_RING]
    assert notes == []
    assert [a for a in member_alerts(stack) if a["labels"].get("ring") == SLOW_RING] == []


def test_alertmanager_applies_the_inhibition_rules_the_mixin_ships(
    stack: Stack, say: Callable[[str], None]
) -> None:
    mark = stack.webhook.mark()
    member = {"job": JOB, "ring": RING, "member": "ingester-9", "severity": "critical"}
    stack.post_alerts(
        [
            {
                "alertname": "RingwatchScanFailing",
                "job": JOB,
                "table": "blind",
                "severity": "critical",
            },
            {"alertname": STALE, **member, "table": "blind"},
            {"alertname": "CortexRingMemberGhost", **member, "table": "ghosts"},
            {"alertname": STALE, **member, "table": "ghosts"},
            {"alertname": CAS, **member, "table": "seen"},
            {"alertname": STALE, **member, "table": "seen"},
            {
                "alertname": "CortexRingUnhealthyMembers",
                "job": JOB,
                "ring": RING,
                "table": "quorum",
                "severity": "critical",
            },
            {
                "alertname": "CortexRingMemberClockSkewed",
                **member,
                "table": "quorum",
                "severity": "info",
            },
        ]
    )

    def states() -> dict[tuple[str, str], bool]:
        return {
            (a["labels"]["alertname"], a["labels"]["table"]): bool(a["status"]["inhibitedBy"])
            for a in stack.alertmanager_alerts()
            if a["labels"].get("table") in ("blind", "ghosts", "seen", "quorum")
        }

    expected = {
        ("RingwatchScanFailing", "blind"): False,
        (STALE, "blind"): False,
        ("CortexRingMemberGhost", "ghosts"): False,
        (STALE, "ghosts"): True,
        (STALE, "seen"): False,
        (CAS, "seen"): True,
        ("CortexRingUnhealthyMembers", "quorum"): False,
        ("CortexRingMemberClockSkewed", "quorum"): True,
    }
    got = wait_until(
        lambda: (s := states()) == expected and s, 10, "Alertmanager to inhibit as the mixin ships"
    )
    time.sleep(3 * TIMINGS.group_wait + 1)
    reached = {(n.alertname, n.labels["table"]) for n in stack.webhook.since(mark)}
    say(
        f"inhibition: {sum(got.values())} of {len(got)} alerts inhibited; reached the webhook: "
        f"{sorted(reached)}"
    )
    assert reached == {k for k, inhibited in expected.items() if not inhibited}
