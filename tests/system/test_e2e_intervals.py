"""Detection at the intervals people run: the mixin at its default `_config`, ringwatch at its
default stale flags, at ringwatch's own 15 s defaults (scan, scrape, evaluation) and at
kube-prometheus-stack's 30 s scrape and evaluation (ringwatch scanning every 15 s).

One stack per cadence (e2e/stack.py): 6 ingesters heartbeating every 5 s and 3 store-gateways
every 15 s, Alertmanager's group_wait 1 s. Each stack, in order: the ring starting up pages
nothing; a clean rolling restart of three ingesters pages nothing; an ingester frozen with a
steady history pages critical within the target of its cadence, and so does one that freezes
about 30 s after ringwatch first sees it, re-registered (measured side by side); the 15 s ring
pages nothing all along. Each stack takes about 4-5 minutes: `pytest -m "not slow"` leaves them
out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from e2e.stack import RING, SLOW_RING, Notification, Stack, Timings, http_json, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
E2E_NAME = "e2e intervals"
TABLE = "e2e-intervals-ring"
DEFAULTS = {"ringwatchSelector": 'job="ringwatch"'}  # nothing else: the mixin's defaults
STALE = "CortexRingMemberHeartbeatStale"
MEMBER_ALERT_PREFIX = "CortexRing"
NOISE = 5.0  # a loaded 2-core machine


def cadence(scan: float, scrape: float) -> Timings:
    """The e2e ring at these intervals (evaluation = scrape)."""
    return Timings(
        members=6,
        zones=3,
        heartbeat_period=5.0,
        scan_interval=scan,
        scrape_interval=scrape,
        evaluation_interval=scrape,
        group_wait=1.0,
        group_interval=1.0,
        slow_members=3,
        slow_heartbeat_period=15.0,
    )


# (name, timings, page target in seconds from the last heartbeat)
CADENCES = {
    "15s": (cadence(15.0, 15.0), 75.0),
    "30s": (cadence(15.0, 30.0), 120.0),
}


@pytest.fixture(scope="module", params=sorted(CADENCES))
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The stack at one cadence, started once for its scenarios."""
    name = request.param
    timings, _ = CADENCES[name]
    s = Stack(
        tmp_path_factory.mktemp(f"intervals-{name}"),
        timings=timings,
        mixin_config=DEFAULTS,
        table=f"{TABLE}-{name}",
        stale_flags=(),
    )
    try:
        s.start(timeout=180)
    except BaseException as e:
        logs = s.logs()
        s.stop()
        raise RuntimeError(f"{E2E_NAME} {name}: stack did not start:\n{logs}") from e
    try:
        yield s
    finally:
        s.stop()


def cadence_of(s: Stack) -> str:
    """The CADENCES key the stack runs at."""
    return s.table.rsplit("-", 1)[1]


def member_pages(notes: list[Notification]) -> list[str]:
    return [n.line() for n in notes if n.alertname.startswith(MEMBER_ALERT_PREFIX)]


def ring_json_member(s: Stack, name: str) -> dict[str, Any] | None:
    """The member as ringwatch's /ring.json shows it (its last scan), if there."""
    doc = http_json(s.urls["ringwatch"] + "/ring.json")
    return next(
        (
            m
            for t in doc["tables"]
            for r in t["rings"]
            if r["ring"] == RING
            for m in r["members"]
            if m["member"] == name
        ),
        None,
    )


def restart(s: Stack, name: str) -> None:
    """A clean restart (LEAVING for its final sleep, heartbeating), until it is ACTIVE again."""
    before = s.member(name)["registered_timestamp"]
    s.act(name, "restart", duration="10s")
    wait_until(
        lambda: (m := s.member(name))["state"] == "ACTIVE" and m["registered_timestamp"] != before,
        40,
        f"{name} to come back ACTIVE",
    )


def freeze(s: Stack, name: str) -> float:
    """Freeze `name`; its last heartbeat."""
    s.act(name, "freeze")
    member = wait_until(
        lambda: (m := s.member(name)) and not m["writing"] and m,
        10,
        f"{name}'s last write to finish",
    )
    return float(member["last_heartbeat"])


def first_page(s: Stack, name: str, mark: int, within: float) -> Notification:
    """The first notification for `name` since `mark`."""
    return s.webhook.wait_for(
        lambda n: n.status == "firing" and n.member == name,
        mark,
        within + NOISE + 30,
        f"a page for {name}",
    )


def test_start_up_and_a_clean_rolling_restart_page_nothing(
    stack: Stack, say: Callable[[str], None]
) -> None:
    name, s = cadence_of(stack), stack
    started = time.monotonic()
    for member in ("ingester-0", "ingester-2", "ingester-5"):
        restart(s, member)
    # A scan, a scrape and two evaluations after the last one came back (the stale alert's for:
    # is 0s), and a margin.
    time.sleep(15 + s.timings.scan_interval + 3 * s.timings.evaluation_interval)
    pages = member_pages(s.webhook.since(0))
    say(
        f"{name}: start-up and a rolling restart of 3 ingesters "
        f"({time.monotonic() - started:.0f}s): member notifications: {pages or 'none'}"
    )
    assert pages == []


def test_frozen_members_page_critical_within_the_target_with_a_history_or_just_seen(
    stack: Stack, say: Callable[[str], None]
) -> None:
    """Two ingesters of one zone (one zone down is tolerated: no ring page): ingester-1 with a
    steady history, ingester-4 re-registered and frozen 30 s after ringwatch first saw it."""
    name, s = cadence_of(stack), stack
    _, target = CADENCES[name]
    mark = s.webhook.mark()
    steady, fresh = "ingester-1", "ingester-4"
    before = s.member(fresh)["registered_timestamp"]
    s.act(fresh, "restart", duration="10s")
    steady_beat = freeze(s, steady)
    seen = wait_until(
        lambda: (
            (m := ring_json_member(s, fresh)) is not None
            and m["registered_timestamp"] != before
            and m["state"] == "ACTIVE"
            and time.time()
        ),
        60,
        f"ringwatch to see {fresh} registered again",
        interval=0.25,
    )
    time.sleep(max(0.0, seen + 30 - time.time()))
    fresh_beat = freeze(s, fresh)
    judged = ring_json_member(s, fresh) or {}
    pages = {m: first_page(s, m, mark, target) for m in (steady, fresh)}
    delays = {
        m: pages[m].received - beat for m, beat in ((steady, steady_beat), (fresh, fresh_beat))
    }
    for m, what in ((steady, "steady history"), (fresh, "frozen 30s after ringwatch first saw it")):
        say(
            f"{name}: frozen member ({what}): last heartbeat -> first page "
            f"({pages[m].alertname} {pages[m].labels['severity']}) {delays[m]:.1f}s "
            f"(target <= {target:g}s)"
        )
    say(
        f"{name}: {fresh} when frozen: period {judged.get('heartbeat_period_seconds')}, "
        f"threshold {judged.get('stale_threshold_seconds')}"
    )
    for m in (steady, fresh):
        assert (pages[m].alertname, pages[m].labels["severity"]) == (STALE, "critical")
        assert delays[m] <= target + NOISE


def test_the_15s_ring_paged_nothing_all_along(stack: Stack, say: Callable[[str], None]) -> None:
    name, s = cadence_of(stack), stack
    notes = [n.line() for n in s.webhook.since(0) if n.labels.get("ring") == SLOW_RING]
    others = sorted(
        {n.member for n in s.webhook.since(0) if n.alertname.startswith(MEMBER_ALERT_PREFIX)}
        - {"ingester-1", "ingester-4"}
    )
    say(
        f"{name}: store-gateways (15s period) notifications: {notes or 'none'}; other members "
        f"paged: {others or 'none'}"
    )
    assert notes == []
    assert others == []
