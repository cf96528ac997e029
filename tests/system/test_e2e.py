"""End to end: ringwatch -> Prometheus -> Alertmanager -> a pager (a webhook in this process).

The stack (e2e/stack.py) runs once for the module: moto's DynamoDB, `ringwatch simulate` with 12
members in 3 zones heartbeating every second, `ringwatch serve` scanning every second through a
proxy that can blind it, Prometheus (Debian's) scraping and evaluating every second with the mixin
rendered at e2e thresholds through its `_config`, and Alertmanager (Debian's) with group_wait and
group_interval 1 s. Scenarios run one after the other on distinct members, each starting from a
quiet stack, and assert what reaches the webhook. Delays are printed as they are measured.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.stack import (
    E2E_STALE_AFTER,
    JOB,
    MIXIN_CONFIG,
    RING,
    TIMINGS,
    Notification,
    Stack,
    http_json,
    seconds,
    wait_until,
)

pytestmark = pytest.mark.e2e
E2E_NAME = "e2e"
START_TIMEOUT = 90
TABLE = "e2e-cortex-ring"  # not a table name other tests load into the session's moto

MEMBER_ALERTS = frozenset(
    {
        "CortexRingMemberHeartbeatStale",
        "CortexRingMemberCASStalled",
        "CortexRingMemberGhost",
        "CortexRingRolloutStalled",
        "CortexRingUnhealthyMembers",
    }
)
STALE, CAS, GHOST, ROLLOUT = (
    "CortexRingMemberHeartbeatStale",
    "CortexRingMemberCASStalled",
    "CortexRingMemberGhost",
    "CortexRingRolloutStalled",
)
SCAN_FAILING = "RingwatchScanFailing"

R = MIXIN_CONFIG["ringDefaults"]
STALE_AFTER, STALE_FOR = E2E_STALE_AFTER, seconds(R["heartbeatStaleFor"])
CAS_AFTER, CAS_FOR = seconds(R["casStalledAfter"]), seconds(R["casStalledFor"])
GHOST_AFTER, GHOST_FOR = seconds(R["ghostAfter"]), seconds(R["ghostFor"])
JOINING_FOR = seconds(R["joiningStuckFor"])
LEAVING_FOR = seconds(R["leavingStuckFor"])
SCAN_AFTER = seconds(MIXIN_CONFIG["scanFailingAfter"])
SCAN_FOR = seconds(MIXIN_CONFIG["scanFailingFor"])
PIPELINE = TIMINGS.pipeline()
# A loaded 2-core CI machine delays any step a little: upper bounds get this much slack.
NOISE = 5.0
EARLY = 0.5  # clock granularity: nothing may arrive more than this before its threshold allows
RESTART_LEAVING = 2.0  # seconds a restarting member stays LEAVING
assert RESTART_LEAVING + 2 * PIPELINE < LEAVING_FOR


# --- fixtures ----------------------------------------------------------------------------------


def make_stack(tmp: Path) -> Stack:
    """The e2e-sized stack: the mixin rendered with e2e thresholds (MIXIN_CONFIG)."""
    return Stack(tmp, table=TABLE)


# --- helpers -----------------------------------------------------------------------------------


def settle(stack: Stack, timeout: float = 90.0) -> int:
    """Wait until nothing is pending or firing in Prometheus nor held in Alertmanager (an
    inhibited alert's resolution never reaches the webhook); answers the webhook mark from which
    a scenario reads."""

    def quiet() -> bool:
        return not stack.prometheus_alerts() and not stack.alertmanager_alerts()

    wait_until(quiet, timeout, "a quiet stack (no pending or firing alert)", interval=0.5)
    return stack.webhook.mark()


def firing(alertname: str, member: str | None = None) -> Callable[[Notification], bool]:
    return lambda n: (
        n.status == "firing" and n.alertname == alertname and (member is None or n.member == member)
    )


def resolved(alertname: str, member: str | None = None) -> Callable[[Notification], bool]:
    return lambda n: (
        n.status == "resolved"
        and n.alertname == alertname
        and (member is None or n.member == member)
    )


def stopped_member(stack: Stack, name: str) -> dict[str, Any]:
    """The member once no write of it is in flight: its last heartbeat is final."""
    return wait_until(
        lambda: (m := stack.member(name)) and not m["writing"] and m,
        10,
        f"{name}'s last write to finish",
    )


def member_labels_ok(note: Notification, member: dict[str, Any]) -> None:
    labels = note.labels
    assert labels["member"] == member["member"]
    assert labels["ring"] == RING
    assert labels["table"] == TABLE
    assert labels["member_zone"] == member["zone"]
    assert "instance" not in labels, "the scrape's instance must be aggregated away"


def firings(notes: list[Notification]) -> list[tuple[str, str | None]]:
    return sorted((n.alertname, n.member) for n in notes if n.status == "firing")


def value(result: list[dict[str, Any]]) -> float | None:
    return float(result[0]["value"][1]) if result else None


# --- the rules Prometheus runs -----------------------------------------------------------------


def test_prometheus_runs_the_mixin_rendered_with_e2e_thresholds(stack: Stack) -> None:
    rendered = {
        (g["name"], r.get("alert") or r.get("record"), r["expr"].strip())
        for doc in ("prometheus_rules", "prometheus_alerts")
        for g in stack.rendered[doc]["groups"]
        for r in g["rules"]
    }
    loaded = {
        (g["name"], r["name"], r["query"].strip()) for g in stack.loaded_rules() for r in g["rules"]
    }
    assert {(g, n) for g, n, _ in loaded} == {(g, n) for g, n, _ in rendered}
    assert len(loaded) == len(rendered)
    stale_exprs = [q for _, n, q in loaded if n == STALE]
    assert stale_exprs and all(
        "ringwatch_member_heartbeat_stale_threshold_seconds" in q for q in stale_exprs
    ), stale_exprs
    # Every rule evaluates without error against what ringwatch serves.
    wait_until(
        lambda: all(r["health"] == "ok" for g in stack.loaded_rules() for r in g["rules"]),
        15,
        "every rule to evaluate healthily",
    )


# --- 1. a frozen member ------------------------------------------------------------------------


def test_frozen_member_pages_stale_and_cas_stalled_for_exactly_that_member_then_resolves(
    stack: Stack, say: Callable[[str], None]
) -> None:
    mark = settle(stack)
    name = "ingester-4"
    stack.act(name, "freeze")
    member = stopped_member(stack, name)
    last_heartbeat, version = member["last_heartbeat"], member["version"]

    stale_bound = STALE_AFTER + STALE_FOR + PIPELINE
    # CAS age runs from when ringwatch first saw the last version: up to a scan later.
    cas_bound = CAS_AFTER + CAS_FOR + PIPELINE + TIMINGS.scan_interval
    stale = stack.webhook.wait_for(
        firing(STALE, name), mark, stale_bound + NOISE + 5, f"{STALE} for {name}"
    )
    stale_delay = stale.received - last_heartbeat
    say(
        f"frozen member: last heartbeat -> {STALE} {stale_delay:.1f}s "
        f"(thresholds {STALE_AFTER:g}s + for {STALE_FOR:g}s, bound {stale_bound:g}s)"
    )
    # CAS-stalled fires in Prometheus, and Alertmanager holds it back: the mixin's inhibition
    # rules (stale over CAS-stalled for one member) are loaded there.
    cas_alert = wait_until(
        lambda: [
            a
            for a in stack.alertmanager_alerts()
            if a["labels"]["alertname"] == CAS and a["labels"].get("member") == name
        ],
        cas_bound + NOISE + 5,
        f"{CAS} for {name} in Alertmanager",
    )[0]
    cas_delay = time.time() - last_heartbeat
    say(
        f"frozen member: last heartbeat -> {CAS} in Alertmanager {cas_delay:.1f}s, inhibited "
        f"(thresholds {CAS_AFTER:g}s + for {CAS_FOR:g}s, bound {cas_bound:g}s)"
    )
    assert wait_until(
        lambda: next(
            a for a in stack.alertmanager_alerts() if a["fingerprint"] == cas_alert["fingerprint"]
        )["status"]["inhibitedBy"],
        5,
        f"{CAS} to be inhibited",
    )
    assert stack.member(name)["version"] == version, "a frozen member's version must not move"

    thawed = time.time()
    stack.act(name, "thaw")
    stale_ok = stack.webhook.wait_for(
        resolved(STALE, name), mark, PIPELINE + NOISE + 10, f"{STALE} resolved for {name}"
    )
    say(f"frozen member: thaw -> resolved {stale_ok.received - thawed:.1f}s ({STALE})")
    settle(stack, timeout=30)

    assert STALE_AFTER + STALE_FOR - EARLY <= stale_delay <= stale_bound + NOISE
    member_labels_ok(stale, member)
    assert stale.labels["severity"] == "critical"
    assert "stale threshold" in stale.annotations["description"]
    # Nothing else reached the pager: one page, for this member only.
    assert firings(stack.webhook.since(mark)) == [(STALE, name)]


# --- 2. a clean rolling restart ----------------------------------------------------------------


def test_clean_rolling_restart_pages_nobody(stack: Stack, say: Callable[[str], None]) -> None:
    mark = settle(stack)
    started = time.time()
    before = {m["member"]: m for m in stack.members()}
    order = sorted(before, key=lambda n: int(n.rsplit("-", 1)[1]))
    for name in order:
        stack.act(name, "restart", duration=f"{RESTART_LEAVING:g}s")

        def back(name: str = name) -> bool:
            m = stack.member(name)
            return (
                m["state"] == "ACTIVE"
                and m["phase"] == "active"
                and m["registered_timestamp"] != before[name]["registered_timestamp"]
            )

        wait_until(back, RESTART_LEAVING + 20, f"{name} to come back ACTIVE", interval=0.1)
    rollout = time.time() - started
    # Whatever the rollout set off is pending in Prometheus by now; wait for it all to clear.
    settle(stack, timeout=60)
    # The exporter saw every member LEAVING, then the new registrations.
    window = f"{int(time.time() - started) + 5}s"
    seen_leaving = stack.query(
        f'max by (member) (max_over_time(ringwatch_member_state{{job="{JOB}", state="LEAVING"}}'
        f"[{window}]))"
    )
    assert {r["metric"]["member"] for r in seen_leaving if float(r["value"][1]) == 1} == set(order)
    registered = stack.query(f'ringwatch_member_registered_timestamp_seconds{{job="{JOB}"}}')
    assert len(registered) == len(order)
    assert all(float(r["value"][1]) >= started - 1 for r in registered)
    notes = stack.webhook.since(mark)
    say(
        f"rolling restart of {len(order)} members took {rollout:.1f}s; notifications: "
        f"{[n.line() for n in notes] or 'none'}"
    )
    assert [n for n in notes if n.alertname in MEMBER_ALERTS] == []


# --- 3. a blind exporter -----------------------------------------------------------------------


def test_blind_exporter_pages_scan_failing_and_no_member_alert_then_resolves(
    stack: Stack, say: Callable[[str], None]
) -> None:
    mark = settle(stack)
    assert stack.proxy is not None
    bound = SCAN_AFTER + SCAN_FOR + PIPELINE
    stack.proxy.blackhole = True
    blinded = time.time()
    try:
        note = stack.webhook.wait_for(
            firing(SCAN_FAILING), mark, bound + NOISE + 5, f"{SCAN_FAILING}"
        )
        delay = note.received - blinded
        say(
            f"blind exporter: DynamoDB blackholed -> {SCAN_FAILING} {delay:.1f}s "
            f"(thresholds {SCAN_AFTER:g}s + for {SCAN_FOR:g}s, bound {bound:g}s)"
        )
        assert note.labels["table"] == TABLE and "instance" not in note.labels
        # While blind, ringwatch says so and no member series reaches the alerts.
        assert value(stack.query(f'max(ringwatch_up{{job="{JOB}"}})')) == 0
        assert stack.query("member:ringwatch_member_heartbeat_age_seconds:max") == []
        # The ring lives on: the simulator writes to DynamoDB directly.
        assert all(m["state"] == "ACTIVE" and m["last_error"] is None for m in stack.members())
    finally:
        stack.proxy.blackhole = False
    restored = time.time()
    back = stack.webhook.wait_for(
        resolved(SCAN_FAILING), mark, PIPELINE + NOISE + 15, f"{SCAN_FAILING} resolved"
    )
    say(f"blind exporter: DynamoDB restored -> resolved {back.received - restored:.1f}s")
    settle(stack, timeout=60)
    assert delay >= SCAN_AFTER + SCAN_FOR - TIMINGS.scan_interval - EARLY
    assert delay <= bound + NOISE
    assert firings(stack.webhook.since(mark)) == [(SCAN_FAILING, None)]
    assert value(stack.query(f'max(ringwatch_up{{job="{JOB}"}})')) == 1


def test_frozen_member_then_blind_exporter_leaves_a_critical_firing_never_only_a_warning(
    stack: Stack, say: Callable[[str], None]
) -> None:
    mark = settle(stack)
    assert stack.proxy is not None
    name = "ingester-5"
    stack.act(name, "freeze")
    stopped_member(stack, name)
    stack.webhook.wait_for(
        firing(STALE, name), mark, STALE_AFTER + STALE_FOR + PIPELINE + NOISE, f"{STALE} for {name}"
    )
    stack.proxy.blackhole = True
    blinded = time.time()
    try:
        blind = stack.webhook.wait_for(
            firing(SCAN_FAILING),
            mark,
            SCAN_AFTER + SCAN_FOR + PIPELINE + NOISE + 5,
            f"{SCAN_FAILING}",
        )
        # The stale page stops with ringwatch's sight (gapTolerance): by then the blind page is
        # firing, and critical.
        stack.webhook.wait_for(
            resolved(STALE, name),
            mark,
            PIPELINE + NOISE + 10,
            f"{STALE} resolved once ringwatch is blind",
        )
        time.sleep(2 * PIPELINE)
        active = sorted(
            (a["labels"]["alertname"], a["labels"]["severity"])
            for a in stack.alertmanager_alerts()
            if a["status"]["state"] == "active" and not a["status"]["inhibitedBy"]
        )
        say(
            f"frozen then blind: DynamoDB blackholed -> {SCAN_FAILING} "
            f"({blind.labels['severity']}) {blind.received - blinded:.1f}s; active in "
            f"Alertmanager then: {active}"
        )
    finally:
        stack.proxy.blackhole = False
        stack.act(name, "thaw")
    settle(stack, timeout=60)
    assert blind.labels["severity"] == "critical" and blind.labels["table"] == TABLE
    assert "critical" in {severity for _, severity in active}
    # What the on-call held all along: each notification in order, the last word a critical.
    notes = stack.webhook.since(mark)
    firing_at_blind = [n for n in notes if n.status == "firing" and n.received >= blinded]
    assert firing_at_blind and all(n.labels["severity"] == "critical" for n in firing_at_blind)


# --- 4. a ghost --------------------------------------------------------------------------------


def test_killed_member_left_active_pages_ghost_after_its_threshold(
    stack: Stack, say: Callable[[str], None]
) -> None:
    mark = settle(stack)
    name = "ingester-7"
    stack.act(name, "kill")
    member = stopped_member(stack, name)
    assert member["state"] == "ACTIVE" and member["killed"]
    bound = GHOST_AFTER + GHOST_FOR + PIPELINE
    ghost = stack.webhook.wait_for(
        firing(GHOST, name), mark, bound + NOISE + 5, f"{GHOST} for {name}"
    )
    delay = ghost.received - member["last_heartbeat"]
    say(
        f"ghost: last heartbeat -> {GHOST} {delay:.1f}s "
        f"(thresholds {GHOST_AFTER:g}s + for {GHOST_FOR:g}s, bound {bound:g}s)"
    )
    member_labels_ok(ghost, member)

    # The ghost inhibits the member's stale and CAS-stalled alerts.
    assert wait_until(
        lambda: all(
            a["status"]["inhibitedBy"]
            for a in stack.alertmanager_alerts()
            if a["labels"]["alertname"] in (STALE, CAS)
        ),
        5,
        f"{STALE} and {CAS} to be inhibited by {GHOST}",
    )
    stack.act(name, "restart")  # the operator forgets it; a new process registers
    stack.webhook.wait_for(
        resolved(GHOST, name), mark, PIPELINE + NOISE + 10, f"{GHOST} resolved for {name}"
    )
    settle(stack, timeout=30)
    assert GHOST_AFTER + GHOST_FOR - EARLY <= delay <= bound + NOISE
    # A dead member is stale (paged first) and CAS-stalled too (inhibited); nobody else is paged.
    assert (
        {(GHOST, name), (STALE, name)}
        <= set(firings(stack.webhook.since(mark)))
        <= {(CAS, name), (GHOST, name), (STALE, name)}
    )


# --- 5. a stuck rollout ------------------------------------------------------------------------


def test_member_stuck_joining_pages_rollout_stalled(
    stack: Stack, say: Callable[[str], None]
) -> None:
    mark = settle(stack)
    name = "ingester-10"
    stack.act(name, "join-stuck")
    member = wait_until(
        lambda: (m := stack.member(name))["state"] == "JOINING" and m,
        15,
        f"{name} to register as JOINING",
    )
    bound = JOINING_FOR + PIPELINE
    stalled = stack.webhook.wait_for(
        firing(ROLLOUT, name), mark, bound + NOISE + 5, f"{ROLLOUT} for {name}"
    )
    delay = stalled.received - member["registered_timestamp"]
    say(
        f"stuck rollout: JOINING registration -> {ROLLOUT} {delay:.1f}s "
        f"(threshold {JOINING_FOR:g}s, bound {bound:g}s)"
    )
    assert stalled.labels["state"] == "JOINING"
    member_labels_ok(stalled, member)

    stack.act(name, "restart")
    stack.webhook.wait_for(
        resolved(ROLLOUT, name), mark, PIPELINE + NOISE + 10, f"{ROLLOUT} resolved for {name}"
    )
    assert JOINING_FOR - EARLY <= delay <= bound + NOISE
    assert firings(stack.webhook.since(mark)) == [(ROLLOUT, name)]


# --- dashboards --------------------------------------------------------------------------------

_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)
GRAFANA_BUILTINS = {
    "__rate_interval": f"{4 * TIMINGS.scrape_interval:g}s",
    "__interval": f"{TIMINGS.scrape_interval:g}s",
    "__range": "60s",
}


def fill(text: str, variables: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        return variables.get(name, match.group(0))

    return _VAR.sub(sub, text)


def resolve_variables(stack: Stack, dashboard: dict[str, Any]) -> dict[str, str]:
    """Template variables as Grafana fills them: the first value a query variable finds, or its
    "All" value when it finds none (as for `cluster` and `namespace` here)."""
    variables = dict(GRAFANA_BUILTINS)
    for var in dashboard.get("templating", {}).get("list", []):
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = _LABEL_VALUES.match(fill(query, variables))
        assert match, f"variable {var['name']}: not a label_values() query: {query}"
        selector, label = match.groups()
        url = (
            stack.urls["prometheus"]
            + f"/api/v1/label/{label}/values?"
            + urllib.parse.urlencode({"match[]": selector})
        )
        answer = http_json(url)
        assert answer["status"] == "success", (var["name"], answer)
        values = answer["data"]
        variables[var["name"]] = (
            promql_regex_escape(values[0]) if values else (var.get("allValue") or ".*")
        )
    return variables


def promql_regex_escape(text: str) -> str:
    """As Grafana's Prometheus datasource escapes a value put into a `=~` matcher."""
    return re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\\\1", text)


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


def test_every_dashboard_query_runs_and_ring_health_panels_return_data(
    stack: Stack, say: Callable[[str], None]
) -> None:
    settle(stack)
    now = time.time()
    errors, empty, count = [], [], 0
    for file_name, dashboard in sorted(stack.rendered["dashboards"].items()):
        variables = resolve_variables(stack, dashboard)
        assert (variables["table"], variables["ring"]) == (TABLE, RING)
        for panel in panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if not target.get("expr"):
                    continue
                expr = fill(target["expr"], variables)
                assert "$" not in expr.replace("$1", ""), f"unfilled variable in {expr}"
                count += 1
                if target.get("instant"):
                    answer = stack.query_range(expr, now, now, 1)
                else:
                    answer = stack.query_range(expr, now - 60, now, TIMINGS.scrape_interval)
                where = f"{file_name} / {panel.get('title')!r}: {expr}"
                if answer.get("status") != "success":
                    errors.append(f"{where}: {answer.get('error')}")
                elif "ring-health" in file_name and not answer["data"]["result"]:
                    empty.append(where)
    say(f"dashboards: {count} panel queries run against Prometheus")
    assert count > 30
    assert errors == []
    assert empty == [], "ring-health panels without data"
