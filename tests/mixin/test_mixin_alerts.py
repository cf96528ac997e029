"""The mixin's alerts, run by `promtool test rules` against timelines of what ringwatch would serve.

Each scenario simulates ring members as Cortex writes them and ringwatch as it scans and serves
them (snapshot kept while a scan fails, dropped after --snapshot.max-age), and states exactly which
alerts fire, with their labels and annotations, and which must not. Every scenario runs with one
ringwatch replica and with two (every ringwatch series twice, two `instance` values: each alert must
still fire exactly once, with the same labels and text), and with --metrics.member-states all and
current.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from support import REPO
from support.alertsim import (
    NS,
    RING,
    SG_RING,
    STEP,
    TABLE,
    Member,
    Ringwatch,
    Scenario,
    Series,
    fmt_labels,
    hms,
    member_labels,
    promtool_doc,
    promtool_yaml,
    silent,
    spike_writes,
    start_promtool,
)
from support.cortexdata import HANG_FIXTURES

RENDERED_ALERTS = REPO / "mixin" / "prometheus_alerts.yaml"
RUNBOOK_BASE = yaml.safe_load(RENDERED_ALERTS.read_text())["groups"][0]["rules"][0]["annotations"][
    "runbook_url"
].split("#")[0]
FIXTURES = HANG_FIXTURES

MEMBER_ALERTS = (
    "CortexRingMemberHeartbeatStale",
    "CortexRingMemberCASStalled",
    "CortexRingMemberGhost",
    "CortexRingMemberClockSkewed",
    "CortexRingRolloutStalled",
    "CortexRingUnhealthyMembers",
)
ALL_ALERTS = (
    *MEMBER_ALERTS,
    "CortexIngesterCASFlatlined",
    "RingwatchScanFailing",
    "RingwatchDown",
    "RingwatchDynamoDBThrottled",
    "RingwatchDecodeErrors",
)


def runbook(alert: str) -> str:
    return f"{RUNBOOK_BASE}#{alert.lower()}"


def member_text(m: Member) -> str:
    zone = f" (zone {m.zone})" if m.zone else ""
    return f"Member {m.name}{zone} of ring {m.ring} in table {TABLE}"


def stale_alert(m: Member, age: int) -> tuple[dict, dict]:
    return (
        member_labels(m, severity="critical"),
        {
            "summary": "A Cortex ring member has stopped heartbeating.",
            "description": f"{member_text(m)} last heartbeated {hms(age)} before ringwatch read it,"
            " more than the stale threshold ringwatch judges it by (its /ring page shows"
            " it, from its heartbeat period). Cortex treats it as unhealthy after its"
            " heartbeat timeout.",
            "runbook_url": runbook("CortexRingMemberHeartbeatStale"),
        },
    )


def cas_alert(m: Member, age: int) -> tuple[dict, dict]:
    return (
        member_labels(m, severity="critical"),
        {
            "summary": "A Cortex ring member's item has stopped changing while it stays in the ring.",
            "description": f"{member_text(m)} has had no successful CAS write (its version has not"
            f" moved) for {hms(age)} (threshold 2m): its heartbeat loop is stuck or the"
            " process is gone.",
            "runbook_url": runbook("CortexRingMemberCASStalled"),
        },
    )


def healthy_members(zones: bool = True) -> list[Member]:
    return [Member(f"ingester-{i}", zone=f"zone-{'abc'[i]}" if zones else "") for i in range(3)]


# --- Scenarios ------------------------------------------------------------------------------------


def frozen_member() -> Scenario:
    ms = healthy_members()
    ms[1].frozen = 300
    frozen = ms[1]
    return Scenario(
        "a frozen member: heartbeat-stale and CAS-stalled fire for that member only",
        duration=900,
        ringwatch=Ringwatch(ms),
        expect=[
            *silent(300, *ALL_ALERTS),
            (360, "CortexRingMemberHeartbeatStale", [stale_alert(frozen, 60)]),
            *silent(360, "CortexRingMemberCASStalled"),
            (600, "CortexRingMemberHeartbeatStale", [stale_alert(frozen, 300)]),
            (600, "CortexRingMemberCASStalled", [cas_alert(frozen, 300)]),
            *silent(
                600,
                "CortexRingMemberGhost",
                "CortexRingRolloutStalled",
                "CortexRingUnhealthyMembers",
                "RingwatchScanFailing",
            ),
        ],
    )


def ghost_and_stuck_leaving() -> Scenario:
    ghost = Member("ingester-0", zone="zone-a", frozen=60)
    leaving = Member(
        "ingester-1", zone="zone-b", frozen=60, states=((0, "ACTIVE"), (60, "LEAVING"))
    )
    ms = [ghost, leaving, Member("ingester-2", zone="zone-c")]
    return Scenario(
        "a dead ACTIVE member is a ghost; one frozen in LEAVING is a stalled rollout, not a ghost",
        duration=1500,
        ringwatch=Ringwatch(ms),
        expect=[
            *silent(1080, "CortexRingMemberGhost"),
            *silent(900, "CortexRingRolloutStalled"),
            (
                1440,
                "CortexRingMemberGhost",
                [
                    (
                        member_labels(ghost, severity="critical"),
                        {
                            "summary": "A Cortex ring member is ACTIVE but dead: it must be forgotten.",
                            "description": f"{member_text(ghost)} is ACTIVE but its last heartbeat is "
                            f"{hms(1380)} old (threshold 15m) and its version has not moved: it"
                            " died without leaving the ring and still owns tokens. Forget it"
                            " once its process is confirmed gone.",
                            "runbook_url": runbook("CortexRingMemberGhost"),
                        },
                    )
                ],
            ),
            (
                1440,
                "CortexRingRolloutStalled",
                [
                    (
                        member_labels(leaving, severity="critical", state="LEAVING"),
                        {
                            "summary": "A Cortex ring member is stuck in a transitional state.",
                            "description": f"{member_text(leaving)} has been LEAVING for more than 15m.",
                            "runbook_url": runbook("CortexRingRolloutStalled"),
                        },
                    )
                ],
            ),
            # two zones stale: replication no longer holds
            (1440, "CortexRingUnhealthyMembers", [unhealthy_alert(2)]),
        ],
    )


def unhealthy_alert(domains: int) -> tuple[dict, dict]:
    return (
        {"job": "ringwatch", "namespace": NS, "table": TABLE, "ring": RING, "severity": "critical"},
        {
            "summary": "Too many stale members in a Cortex ring for its replication to hold.",
            "description": f"Ring {RING} in table {TABLE} has stale members in {domains} failure"
            " domains (zones, or members if the ring has no zones), more than its quorum"
            " tolerates (replication factor 3, capped by the number of failure"
            " domains). Writes and reads of some series fail their quorum.",
            "runbook_url": runbook("CortexRingUnhealthyMembers"),
        },
    )


def unhealthy_zones() -> Scenario:
    ms = [Member(f"ingester-{z}{i}", zone=f"zone-{z}") for z in "abc" for i in range(2)]
    ms[0].frozen = ms[1].frozen = 60  # both of zone-a: one zone down is tolerated
    return Scenario(
        "zone-aware ring: a whole zone stale is tolerated",
        duration=420,
        ringwatch=Ringwatch(ms),
        expect=[*silent(300, "CortexRingUnhealthyMembers")],
    )


def unhealthy_zoneless() -> Scenario:
    ms = healthy_members(zones=False)
    ms[0].frozen = 60
    ms[1].frozen = 240
    return Scenario(
        "ring without zones: two stale members are too many, one is not",
        duration=420,
        ringwatch=Ringwatch(ms),
        expect=[
            *silent(240, "CortexRingUnhealthyMembers"),
            (360, "CortexRingUnhealthyMembers", [unhealthy_alert(2)]),
        ],
    )


def clean_rolling_restart() -> Scenario:
    # ingester-1 leaves cleanly (LEAVING, heartbeating, for its 30s final sleep), its item is
    # deleted, the new pod registers PENDING then ACTIVE with new tokens; the StatefulSet rolls.
    old = Member("ingester-1", zone="zone-b", gone=330, states=((0, "ACTIVE"), (300, "LEAVING")))
    new = Member("ingester-1", zone="zone-b", born=360, states=((360, "PENDING"), (375, "ACTIVE")))
    ms = [healthy_members()[0], old, new, healthy_members()[2]]
    sts = {
        "job": "kube-state-metrics",
        "namespace": NS,
        "statefulset": "ingester-zone-b",
        "instance": "ksm:8080",
    }
    return Scenario(
        "a clean rolling restart: no member alert",
        duration=1200,
        ringwatch=Ringwatch(ms),
        other={
            "kube_statefulset_status_current_revision"
            + fmt_labels({**sts, "revision": "r1"}): lambda t: 1 if t < 420 else None,
            "kube_statefulset_status_current_revision"
            + fmt_labels({**sts, "revision": "r2"}): lambda t: 1 if t >= 420 else None,
            "kube_statefulset_status_update_revision"
            + fmt_labels({**sts, "revision": "r1"}): lambda t: 1 if t < 290 else None,
            "kube_statefulset_status_update_revision"
            + fmt_labels({**sts, "revision": "r2"}): lambda t: 1 if t >= 290 else None,
            "kube_statefulset_replicas" + fmt_labels(sts): lambda t: 1,
            "kube_statefulset_status_replicas_updated" + fmt_labels(sts): lambda t: (
                0 if 290 <= t < 420 else 1
            ),
        },
        expect=[e for t in range(0, 1201, 60) for e in silent(t, *MEMBER_ALERTS)],
    )


def blind() -> Scenario:
    ms = healthy_members()
    ms[1].frozen = 60
    return Scenario(
        "a frozen member, then ringwatch blind (ringwatch_up 0, then member series gone): the"
        " stale page stops within gapTolerance, RingwatchScanFailing (critical) fires 3m15s after"
        " the last good scan",
        duration=900,
        ringwatch=Ringwatch(ms, scan_ok=lambda t: t < 300),
        expect=[
            (240, "CortexRingMemberHeartbeatStale", [stale_alert(ms[1], 180)]),
            # member alerts outlive the last good scan by gapTolerance (1m) at most
            *[e for t in (360, 720) for e in silent(t, *MEMBER_ALERTS)],
            *silent(465, "RingwatchScanFailing"),
            (480, "RingwatchScanFailing", [scan_failing_alert("for " + hms(480 - 285))]),
            (720, "RingwatchScanFailing", [scan_failing_alert("for " + hms(720 - 285))]),
            *silent(
                720,
                "RingwatchDown",
                "RingwatchDecodeErrors",
                "RingwatchDynamoDBThrottled",
                "CortexIngesterCASFlatlined",
            ),
        ],
    )


def blip(kind: str) -> Scenario:
    """Two minutes of failed scans (a DynamoDB blip) or of failed scrapes (ringwatch restarting)
    on a healthy ring: no alert at any evaluation."""
    out = lambda t: 300 <= t < 420  # noqa: E731
    return Scenario(
        f"a {kind} blip of 2m pages nothing",
        duration=900,
        ringwatch=Ringwatch(
            healthy_members(),
            scan_ok=(lambda t: not out(t)) if kind == "DynamoDB" else (lambda t: True),
        ),
        scrape_fails=out if kind == "scrape" else (lambda t: False),
        expect=[
            *[
                e
                for t in range(0, 901, STEP)
                for e in silent(t, "RingwatchScanFailing", "RingwatchDown")
            ],
            *[e for t in range(0, 901, 60) for e in silent(t, *ALL_ALERTS)],
        ],
    )


def frozen_then_not_scraped() -> Scenario:
    ms = healthy_members()
    ms[1].frozen = 60
    return Scenario(
        "a frozen member, then ringwatch not scraped: RingwatchDown (critical) 3m after",
        duration=720,
        ringwatch=Ringwatch(ms),
        scrape_fails=lambda t: t >= 300,
        expect=[
            (285, "CortexRingMemberHeartbeatStale", [stale_alert(ms[1], 225)]),
            *[e for t in (375, 720) for e in silent(t, *MEMBER_ALERTS)],
            *silent(465, "RingwatchDown"),
            (480, "RingwatchDown", [ringwatch_down_alert(NS)]),
        ],
    )


def scan_failing_alert(how: str) -> tuple[dict, dict]:
    return (
        {"job": "ringwatch", "namespace": NS, "table": TABLE, "severity": "critical"},
        {
            "summary": "ringwatch cannot scan a table: its ring is not watched.",
            "description": f"ringwatch has not scanned table {TABLE} successfully {how} (threshold"
            " 2m). While it cannot, no ring member alert fires for this table: a"
            " member frozen now, or one that was paging, goes unseen.",
            "runbook_url": runbook("RingwatchScanFailing"),
        },
    )


def wedged_loop() -> Scenario:
    return Scenario(
        "a wedged scan loop (ringwatch_up stays 1) counts as failing",
        duration=900,
        ringwatch=Ringwatch(healthy_members(), loop_alive=lambda t: t <= 300),
        expect=[
            *silent(300, "RingwatchScanFailing"),
            (720, "RingwatchScanFailing", [scan_failing_alert("for " + hms(420))]),
            *[e for t in (330, 720) for e in silent(t, *MEMBER_ALERTS)],
        ],
    )


def never_scanned() -> Scenario:
    return Scenario(
        "a table never scanned successfully",
        duration=300,
        ringwatch=Ringwatch(healthy_members(), scan_ok=lambda t: False),
        expect=[
            *silent(45, "RingwatchScanFailing"),
            (180, "RingwatchScanFailing", [scan_failing_alert("since it started")]),
        ],
    )


def ringwatch_down_alert(namespace: str | None) -> tuple[dict, dict]:
    labels = {"job": "ringwatch", "severity": "critical"}
    return (
        {**labels, "namespace": namespace} if namespace else labels,
        {
            "summary": "ringwatch is down: no ring is watched.",
            "description": "Every ringwatch target of job ringwatch is down or absent; without"
            " ringwatch no ring member alert can fire: a member frozen now, or one that"
            " was paging, goes unseen.",
            "runbook_url": runbook("RingwatchDown"),
        },
    )


def ringwatch_down() -> Scenario:
    return Scenario(
        "ringwatch not scraped",
        duration=600,
        ringwatch=Ringwatch(healthy_members()),
        ringwatch_up_target=lambda t: 1 if t < 60 else 0,
        expect=[*silent(225, "RingwatchDown"), (420, "RingwatchDown", [ringwatch_down_alert(NS)])],
    )


def one_replica_of_two_down() -> Scenario:
    ms = healthy_members()
    ms[1].frozen = 60
    return Scenario(
        "one ringwatch replica of two down: the other still watches, the frozen member still"
        " pages, RingwatchDown stays silent",
        duration=720,
        replicas=[Ringwatch(ms), Ringwatch(ms, down_from=120)],
        expect=[
            *silent(720, "RingwatchDown", "RingwatchScanFailing"),
            (720, "CortexRingMemberHeartbeatStale", [stale_alert(ms[1], 660)]),
        ],
    )


def ringwatch_absent() -> Scenario:
    return Scenario(
        "no ringwatch target at all",
        duration=420,
        other={'up{job="cortex/ingester"}': lambda t: 1},
        ringwatch_up_target=lambda t: None,
        expect=[
            *silent(165, "RingwatchDown"),
            (360, "RingwatchDown", [ringwatch_down_alert(None)]),
        ],
    )


def throttled_and_decode_errors() -> Scenario:
    labels = {"job": "ringwatch", "namespace": NS, "table": TABLE}
    return Scenario(
        "throttled reads and undecodable items",
        duration=1200,
        ringwatch=Ringwatch(healthy_members()),
        ringwatch_extra={
            f'ringwatch_requests_total{{table="{TABLE}",operation="Scan",result="success"}}': lambda t: (
                t
            ),
            f'ringwatch_requests_total{{table="{TABLE}",operation="Scan",result="throttled"}}': lambda t: (
                max(0, t - 60)
            ),
            f'ringwatch_decode_errors_total{{table="{TABLE}",reason="protobuf"}}': lambda t: (
                max(0, t - 60) * 2
            ),
            f'ringwatch_decode_errors_total{{table="{TABLE}",reason="snappy"}}': lambda t: 0,
        },
        expect=[
            *silent(600, "RingwatchDynamoDBThrottled"),
            *silent(300, "RingwatchDecodeErrors"),
            (
                1080,
                "RingwatchDynamoDBThrottled",
                [
                    (
                        {**labels, "severity": "warning"},
                        {
                            "summary": "ringwatch's reads of a DynamoDB table are being throttled.",
                            "description": f"ringwatch's requests to table {TABLE} are throttled at 1/s: the"
                            " table's read capacity, which Cortex's ring also uses, is"
                            " exhausted.",
                            "runbook_url": runbook("RingwatchDynamoDBThrottled"),
                        },
                    )
                ],
            ),
            (
                600,
                "RingwatchDecodeErrors",
                [
                    (
                        {**labels, "reason": "protobuf", "severity": "warning"},
                        {
                            "summary": "ringwatch cannot decode ring items: members are hidden.",
                            "description": f"Items of table {TABLE} fail to decode (protobuf) at 2/s: the"
                            " members they hold are missing from every ring metric and alert."
                            " Likely format drift after a Cortex upgrade.",
                            "runbook_url": runbook("RingwatchDecodeErrors"),
                        },
                    )
                ],
            ),
        ],
    )


def stuck_joining_per_ring() -> Scenario:
    ms = [
        *healthy_members(),
        Member("ingester-3", zone="zone-a", born=60, states=((60, "JOINING"),)),
        Member("store-gateway-0", zone="zone-a", ring=SG_RING, born=60, states=((60, "JOINING"),)),
    ]
    ing, sg = ms[3], ms[4]

    def stuck(m: Member, extra: dict) -> tuple[dict, dict]:
        return (
            member_labels(m, severity="critical", state="JOINING", **extra),
            {
                "summary": "A Cortex ring member is stuck in a transitional state.",
                "description": f"{member_text(m)} has been JOINING for more than "
                f"{'30m' if m.ring == SG_RING else '10m'}.",
                "runbook_url": runbook("CortexRingRolloutStalled"),
            },
        )

    return Scenario(
        "JOINING for 15m stalls an ingester, not a store-gateway (30m for that ring)",
        duration=2100,
        ringwatch=Ringwatch(ms),
        expect=[
            *silent(600, "CortexRingRolloutStalled"),
            (900, "CortexRingRolloutStalled", [stuck(ing, {})]),
            (1980, "CortexRingRolloutStalled", [stuck(ing, {}), stuck(sg, {"ring": SG_RING})]),
        ],
    )


def rollout_stuck_on_hung_pod(rolling: bool) -> Scenario:
    ms = healthy_members()
    ms[2].frozen = 180  # SIGTERM while its DynamoDB requests hang: never writes LEAVING
    sts = {
        "job": "kube-state-metrics",
        "namespace": NS,
        "statefulset": "ingester",
        "instance": "ksm:8080",
    }
    update = "r2" if rolling else "r1"
    other = {
        "kube_statefulset_status_current_revision"
        + fmt_labels({**sts, "revision": "r1"}): lambda t: 1,
        "kube_statefulset_status_update_revision"
        + fmt_labels({**sts, "revision": update}): lambda t: 1,
        "kube_statefulset_replicas" + fmt_labels(sts): lambda t: 3,
        "kube_statefulset_status_replicas_updated" + fmt_labels(sts): lambda t: 2 if rolling else 3,
    }
    expected = [
        (
            {
                "job": "ringwatch",
                "namespace": NS,
                "table": TABLE,
                "ring": RING,
                "severity": "critical",
            },
            {
                "summary": "A Cortex StatefulSet rollout is stuck on stale ring members.",
                "description": f"Ring {RING} in table {TABLE} has had 1 stale members for more than 5m"
                " while a StatefulSet carrying it is being updated: a pod is likely hung on"
                " shutdown and its item is frozen.",
                "runbook_url": runbook("CortexRingRolloutStalled"),
            },
        )
    ]
    return Scenario(
        f"a stale member {'during' if rolling else 'without'} a StatefulSet update",
        duration=720,
        ringwatch=Ringwatch(ms),
        other=other,
        expect=[
            *silent(480, "CortexRingRolloutStalled"),
            (660, "CortexRingRolloutStalled", expected if rolling else []),
        ],
    )


def fixture_series(name: str) -> dict[str, float]:
    out = {}
    for line in (FIXTURES / name).read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def ingester_cas() -> Scenario:
    """Both shapes of fixtures/cortex-hang/: ingester-1 with a deadline, ingester-2 without."""
    before = fixture_series("ingester-metrics-before.txt")
    attempts = 'cortex_dynamodb_kv_cas_attempt_total{kv_name="ingester-lifecycler"}'
    ok = (
        'cortex_kv_request_duration_seconds_count{kv_name="ingester-lifecycler",operation="CAS",'
        'role="primary",status_code="200",type="dynamodb"}'
    )
    failed = ok.replace('status_code="200"', 'status_code="500"')
    get = ok.replace('operation="CAS"', 'operation="GET"')
    assert attempts in before and ok in before and get in before
    assert failed in fixture_series("ingester-metrics-hang-60s.txt")
    hang, per_step = 300, 3  # heartbeats every 5 s

    def grow(
        start: float, until: int | None = None, since: int = 0
    ) -> Callable[[int], float | None]:
        def f(t: int) -> float | None:
            if t < since:
                return None
            end = t if until is None else min(t, until)
            return start + per_step * (end - since) // STEP

        return f

    def target(i: int) -> dict[str, str]:
        return {
            "job": "cortex/ingester",
            "namespace": NS,
            "instance": f"10.0.0.{i}:80",
            "pod": f"ingester-{i}",
        }

    def with_target(series: str, i: int) -> str:
        metric, _, rest = series.partition("{")
        return metric + fmt_labels({**target(i), **dict(re.findall(r'(\w+)="([^"]*)"', rest))})

    other: Series = {}
    for i in range(4):
        down_at = 120 if i == 3 else None
        other[with_target("up{}", i)] = lambda t, d=down_at: 0 if d is not None and t >= d else 1
        other[with_target(get, i)] = lambda t: before[get]
    # ingester-0 healthy
    other[with_target(attempts, 0)] = grow(before[attempts])
    other[with_target(ok, 0)] = grow(before[ok])
    # ingester-1: deadline per heartbeat: attempts go on and fail, 500 grows, 200 flat
    other[with_target(attempts, 1)] = grow(before[attempts])
    other[with_target(ok, 1)] = grow(before[ok], until=hang)
    other[with_target(failed, 1)] = grow(1, since=hang + STEP)
    # ingester-2: no deadline: every counter flat from the first hung request on
    other[with_target(attempts, 2)] = grow(before[attempts], until=hang)
    other[with_target(ok, 2)] = grow(before[ok], until=hang)
    # ingester-3: flat too, but the process is down: not this alert's business
    other[with_target(attempts, 3)] = grow(before[attempts], until=120)
    other[with_target(ok, 3)] = grow(before[ok], until=120)

    def alert(i: int, attempts_in_window: str) -> tuple[dict, dict]:
        return (
            {**target(i), "severity": "critical"},
            {
                "summary": "A Cortex ingester is up but its ring CAS writes stopped succeeding.",
                "description": f"Ingester ingester-{i} (job cortex/ingester) had no successful ring"
                f" CAS in the last 3m while answering scrapes; it made"
                f" {attempts_in_window} CAS attempts in that time (0: a request hangs"
                " without a deadline; more: every attempt fails). Its ring entry is"
                " frozen.",
                "runbook_url": runbook("CortexIngesterCASFlatlined"),
            },
        )

    return Scenario(
        "CortexIngesterCASFlatlined in both recorded shapes; a healthy ingester stays silent",
        duration=720,
        other=other,
        ringwatch=Ringwatch(healthy_members()),
        expect=[
            *silent(420, "CortexIngesterCASFlatlined"),
            (660, "CortexIngesterCASFlatlined", [alert(1, "36"), alert(2, "0")]),
        ],
    )


def healthy() -> Scenario:
    return Scenario(
        "a healthy ring stays silent",
        duration=1800,
        ringwatch=Ringwatch(
            [*healthy_members(), Member("store-gateway-0", ring=SG_RING, zone="zone-a")]
        ),
        ringwatch_extra={
            f'ringwatch_requests_total{{table="{TABLE}",operation="Scan",result="success"}}': lambda t: (
                t
            ),
            f'ringwatch_decode_errors_total{{table="{TABLE}",reason="protobuf"}}': lambda t: 0,
        },
        expect=[e for t in (600, 1800) for e in silent(t, *ALL_ALERTS)],
    )


# --- Six ways earlier rules went wrong (each fails on them), page first, no false page


def ghost_alert(m: Member, age: int) -> tuple[dict, dict]:
    return (
        member_labels(m, severity="critical"),
        {
            "summary": "A Cortex ring member is ACTIVE but dead: it must be forgotten.",
            "description": f"{member_text(m)} is ACTIVE but its last heartbeat is {hms(age)} old"
            " (threshold 15m) and its version has not moved: it died without leaving"
            " the ring and still owns tokens. Forget it once its process is confirmed"
            " gone.",
            "runbook_url": runbook("CortexRingMemberGhost"),
        },
    )


def stuck_alert(m: Member, state: str, limit: str) -> tuple[dict, dict]:
    return (
        member_labels(m, severity="critical", state=state),
        {
            "summary": "A Cortex ring member is stuck in a transitional state.",
            "description": f"{member_text(m)} has been {state} for more than {limit}.",
            "runbook_url": runbook("CortexRingRolloutStalled"),
        },
    )


def rollout_stale_alert(stale: int) -> tuple[dict, dict]:
    return (
        {"job": "ringwatch", "namespace": NS, "table": TABLE, "ring": RING, "severity": "critical"},
        {
            "summary": "A Cortex StatefulSet rollout is stuck on stale ring members.",
            "description": f"Ring {RING} in table {TABLE} has had {stale} stale members for more than"
            " 5m while a StatefulSet carrying it is being updated: a pod is likely hung"
            " on shutdown and its item is frozen.",
            "runbook_url": runbook("CortexRingRolloutStalled"),
        },
    )


def skew_alert(m: Member, skew: int) -> tuple[dict, dict]:
    return (
        member_labels(m, severity="info"),
        {
            "summary": "A Cortex ring member's heartbeat timestamps are off while it keeps writing:"
            " its clock is skewed.",
            "description": f"{member_text(m)} writes its item (the version moves) but its heartbeat"
            f" timestamp is {hms(skew)} away from ringwatch's clock, beyond its stale"
            " threshold. Cortex's ring readers judge heartbeats on their own clocks:"
            " fix the clock (NTP) of the member's node or of ringwatch's.",
            "runbook_url": runbook("CortexRingMemberClockSkewed"),
        },
    )


def rolling_statefulset(name: str = "ingester") -> Series:
    """kube-state-metrics of a StatefulSet whose update is in progress all along."""
    sts = {
        "job": "kube-state-metrics",
        "namespace": NS,
        "statefulset": name,
        "instance": "ksm:8080",
    }
    return {
        "kube_statefulset_status_current_revision"
        + fmt_labels({**sts, "revision": "r1"}): lambda t: 1,
        "kube_statefulset_status_update_revision"
        + fmt_labels({**sts, "revision": "r2"}): lambda t: 1,
        "kube_statefulset_replicas" + fmt_labels(sts): lambda t: 3,
        "kube_statefulset_status_replicas_updated" + fmt_labels(sts): lambda t: 2,
    }


def replica_restarts_while_cas_stalled() -> Scenario:
    ms = healthy_members()
    ms[1].frozen = 60
    return Scenario(
        "two replicas, one restarts: CAS-stalled keeps firing for a member frozen 15m",
        duration=960,
        replicas=[Ringwatch(ms), Ringwatch(ms, restarts=(600,))],
        expect=[
            (t, "CortexRingMemberCASStalled", [cas_alert(ms[1], t - 60)])
            for t in (600, 615, 630, 660, 720, 900, 960)
        ],
    )


def small_ring(members: list[Member], what: str) -> Scenario:
    stale = members[-1]
    stale.frozen = 60
    return Scenario(
        f"small ring: {what} pages CortexRingUnhealthyMembers",
        duration=300,
        ringwatch=Ringwatch(members),
        expect=[
            *silent(60, "CortexRingUnhealthyMembers"),
            (240, "CortexRingUnhealthyMembers", [unhealthy_alert(1)]),
        ],
    )


def hiccups(kind: str) -> Scenario:
    """A ghost, members stuck JOINING and LEAVING, a stale member during a rollout; one failed
    scan (or scrape) every 4 minutes."""
    ghost = Member("ingester-0", zone="zone-a", frozen=0)
    joining = Member("ingester-3", zone="zone-a", states=((0, "JOINING"),))
    leaving = Member("ingester-4", zone="zone-b", states=((0, "LEAVING"),))
    ms = [
        ghost,
        joining,
        leaving,
        Member("ingester-1", zone="zone-b"),
        Member("ingester-2", zone="zone-c"),
    ]
    hiccup = lambda t: t % 240 == 120  # noqa: E731
    return Scenario(
        f"one failed {kind} every 4m resets no long for:",
        duration=1500,
        ringwatch=Ringwatch(
            ms, scan_ok=(lambda t: not hiccup(t)) if kind == "scan" else (lambda t: True)
        ),
        scrape_fails=hiccup if kind == "scrape" else (lambda t: False),
        other=rolling_statefulset(),
        expect=[
            (
                840,
                "CortexRingRolloutStalled",
                [stuck_alert(joining, "JOINING", "10m"), rollout_stale_alert(1)],
            ),
            (1500, "CortexRingMemberGhost", [ghost_alert(ghost, 1500)]),
            (
                1500,
                "CortexRingRolloutStalled",
                [
                    stuck_alert(joining, "JOINING", "10m"),
                    stuck_alert(leaving, "LEAVING", "15m"),
                    rollout_stale_alert(1),
                ],
            ),
        ],
    )


def skewed_clocks() -> Scenario:
    behind = Member("ingester-1", zone="zone-b", skew=1200)
    ahead = Member("ingester-2", zone="zone-c", skew=-1200)
    return Scenario(
        "a live member with a skewed clock is no ghost; skew has its own alert",
        duration=1500,
        ringwatch=Ringwatch([healthy_members()[0], behind, ahead]),
        expect=[
            *silent(120, "CortexRingMemberClockSkewed"),
            (
                1500,
                "CortexRingMemberClockSkewed",
                [skew_alert(behind, 1200), skew_alert(ahead, 1200)],
            ),
            *silent(1500, "CortexRingMemberGhost", "CortexRingMemberCASStalled"),
        ],
    )


def frozen_member_pages_first(step: int) -> Scenario:
    """A frozen ingester pages critical at the first scan that finds it older than its
    threshold, 20 s (period 5 s): `for:` is 0s (promtool: scan, scrape and evaluation at one
    instant)."""
    ms = [Member(f"ingester-{i}", zone=f"zone-{'abc'[i]}", born=i) for i in range(3)]
    ms[1].frozen = 301  # its last write
    page = (301 + 20) // step * step + step  # the first scan at which its age exceeds 20 s
    return Scenario(
        f"a frozen member pages critical {page - 301}s after its last heartbeat "
        f"(every interval {step}s)",
        duration=page + 3 * step,
        step=step,
        ringwatch=Ringwatch(ms, step=step),
        expect=[
            *silent(page - step, *ALL_ALERTS),
            (page, "CortexRingMemberHeartbeatStale", [stale_alert(ms[1], page - 301)]),
            *silent(page, "CortexRingMemberCASStalled", "CortexRingUnhealthyMembers"),
        ],
    )


def the_published_threshold_judges() -> Scenario:
    """The alert compares the age with the threshold ringwatch publishes, whatever it is: here
    90 s for every member, whatever its period."""
    ms = healthy_members()
    ms[1].frozen = 300
    return Scenario(
        "the stale alert follows the threshold ringwatch publishes (90s here)",
        duration=480,
        ringwatch=Ringwatch(ms, threshold=lambda period: 90.0),
        expect=[
            *silent(390, "CortexRingMemberHeartbeatStale"),
            (405, "CortexRingMemberHeartbeatStale", [stale_alert(ms[1], 105)]),
        ],
    )


def no_false_page(
    name: str, members: list[Member], duration: int = 1200, step: int = STEP, **ringwatch: object
) -> Scenario:
    return Scenario(
        f"no false page: {name}",
        duration=duration,
        step=step,
        ringwatch=Ringwatch(members, step=step, **ringwatch),  # type: ignore[arg-type]
        expect=[e for t in range(0, duration + 1, 60) for e in silent(t, *MEMBER_ALERTS)],
    )


def ring_starting_up() -> list[Member]:
    return [
        Member(
            f"ingester-{i}",
            zone=f"zone-{'abc'[i % 3]}",
            born=7 * i,
            states=((7 * i, "PENDING"), (7 * i + 5, "ACTIVE")),
        )
        for i in range(9)
    ]


def slow_members(period: int, ring: str) -> list[Member]:
    # born off the scan grid; the 1 s skew stands for Cortex's whole-second timestamps
    return [
        Member(f"m-{i}", zone=f"zone-{'abc'[i]}", ring=ring, period=period, born=3 + 4 * i, skew=1)
        for i in range(3)
    ]


def latency_spike() -> list[Member]:
    return [
        Member(
            f"ingester-{i}",
            zone=f"zone-{'abc'[i]}",
            born=i,
            skew=1,
            writes=spike_writes(i, 5, 300, 600, 1200),
        )
        for i in range(3)
    ]


def state_through_hiccups() -> Scenario:
    joined = Member("ingester-3", zone="zone-a", states=((0, "PENDING"), (30, "ACTIVE")))
    series = "member:ringwatch_member_state:max" + fmt_labels(member_labels(joined, state="ACTIVE"))
    query = 'member:ringwatch_member_state:max{member="ingester-3"}'
    return Scenario(
        "a member's current state: one state once it moved on, kept through a failed scrape",
        duration=240,
        ringwatch=Ringwatch([*healthy_members(), joined]),
        scrape_fails=lambda t: t == 120,
        records=[(t, query, [(series, 1)]) for t in (60, 120, 135)],
    )


REGRESSION_SCENARIOS = [
    replica_restarts_while_cas_stalled,
    lambda: small_ring([Member("ingester-0")], "its only member stale"),
    lambda: small_ring([Member("ingester-0"), Member("ingester-1")], "one of two members stale"),
    lambda: small_ring(
        [Member("ingester-0", zone="zone-a"), Member("ingester-1", zone="zone-b")],
        "one of two zones stale",
    ),
    lambda: hiccups("scan"),
    lambda: hiccups("scrape"),
    skewed_clocks,
    lambda: frozen_member_pages_first(STEP),
    state_through_hiccups,
]
# Every interval at 5 s: a promtool file of its own (one evaluation interval per file).
FAST = 5
FAST_SCENARIOS = [
    lambda: frozen_member_pages_first(FAST),
    lambda: no_false_page("a ring starting up (5s)", ring_starting_up(), 600, FAST),
    lambda: no_false_page(
        "a DynamoDB latency spike delays every heartbeat by 2 periods", latency_spike(), 1200, FAST
    ),
    lambda: no_false_page(
        "store-gateways heartbeating every 15s (5s)", slow_members(15, SG_RING), 600, FAST
    ),
    lambda: no_false_page("members with a 1m period (5s)", slow_members(60, RING), 900, FAST),
    lambda: no_false_page(
        "a ringwatch restart (5s)",
        [*healthy_members(), *slow_members(60, SG_RING)],
        900,
        FAST,
        restarts=(300,),
    ),
]
FALSE_PAGE_SCENARIOS = [
    the_published_threshold_judges,
    lambda: no_false_page("a ring starting up", ring_starting_up()),
    lambda: no_false_page("store-gateways heartbeating every 15s", slow_members(15, SG_RING)),
    lambda: no_false_page("members with a 1m period", slow_members(60, RING)),
    lambda: no_false_page(
        "a ringwatch restart", [*healthy_members(), *slow_members(60, SG_RING)], restarts=(300, 900)
    ),
]

SCENARIOS = [
    frozen_member,
    ghost_and_stuck_leaving,
    unhealthy_zones,
    unhealthy_zoneless,
    clean_rolling_restart,
    blind,
    lambda: blip("DynamoDB"),
    lambda: blip("scrape"),
    frozen_then_not_scraped,
    one_replica_of_two_down,
    wedged_loop,
    never_scanned,
    ringwatch_down,
    ringwatch_absent,
    throttled_and_decode_errors,
    stuck_joining_per_ring,
    lambda: rollout_stuck_on_hung_pod(True),
    lambda: rollout_stuck_on_hung_pod(False),
    ingester_cas,
    healthy,
    *REGRESSION_SCENARIOS,
    *FALSE_PAGE_SCENARIOS,
]


# One replica with every state series, two replicas with only the current state: each mode is
# covered and the suite stays short (promtool takes seconds per run).
MATRIX = [(1, "all"), (2, "current")]


# The cases as promtool reads them, committed so that they read as a specification beside the
# rules; regenerate with `RINGWATCH_WRITE_PROMTOOL_CASES=1 pytest tests/mixin/test_mixin_alerts.py`.
CASES_DIR = REPO / "tests" / "mixin" / "promtool"
CASES_HEADER = (
    "# Generated from the scenarios in tests/mixin/test_mixin_alerts.py: edit them,"
    " then run\n# RINGWATCH_WRITE_PROMTOOL_CASES=1 pytest"
    " tests/mixin/test_mixin_alerts.py\n"
)


def case_files(
    replicas: int, states: str, directory: Path = CASES_DIR
) -> dict[int, tuple[Path, str]]:
    """The promtool files of one run, keyed by step: their paths and their texts."""
    out = {}
    for step, scenarios in ((STEP, SCENARIOS), (FAST, FAST_SCENARIOS)):
        doc = promtool_doc([make() for make in scenarios], replicas, states, written_to=directory)
        path = directory / f"alerts-{replicas}-replicas-{states}-states-{step}s.yaml"
        out[step] = (path, CASES_HEADER + promtool_yaml(doc))
    return out


def test_committed_promtool_cases_are_what_the_scenarios_generate():
    """The one-replica cases are committed; the others, the same with every series doubled (or
    one state series per member), are written at test time."""
    files = case_files(*MATRIX[0])
    if os.environ.get("RINGWATCH_WRITE_PROMTOOL_CASES"):
        CASES_DIR.mkdir(exist_ok=True)
        for path, text in files.values():
            path.write_text(text)
    stale = [
        path.name for path, text in files.values() if not path.exists() or path.read_text() != text
    ]
    assert stale == [], "regenerate: RINGWATCH_WRITE_PROMTOOL_CASES=1 pytest " + __file__
    assert {p.name for p in CASES_DIR.glob("*.yaml")} == {p.name for p, _ in files.values()}


@pytest.fixture(scope="module")
def promtool_results(tmp_path_factory) -> dict[tuple[int, str, int], tuple[int, str]]:
    """promtool on every file at once (the committed ones as they are): seconds per run, and
    the runs are independent."""
    tmp = tmp_path_factory.mktemp("mixin-alerts")
    procs = {}
    for replicas, states in MATRIX:
        committed = (replicas, states) == MATRIX[0]
        for step, (path, text) in case_files(
            replicas, states, CASES_DIR if committed else tmp
        ).items():
            if not committed:
                path.write_text(text)
            procs[replicas, states, step] = start_promtool(path)
    outputs = {key: p.communicate(timeout=300)[0] for key, p in procs.items()}
    return {key: (procs[key].returncode, out) for key, out in outputs.items()}


def test_every_alert_has_a_firing_and_a_silent_case():
    fired, silenced = set(), set()
    for make in (*SCENARIOS, *FAST_SCENARIOS):
        for _, name, alerts in make().expect:
            (fired if alerts else silenced).add(name)
    assert fired == set(ALL_ALERTS)
    assert silenced == set(ALL_ALERTS)


@pytest.mark.parametrize("step", [STEP, FAST])
@pytest.mark.parametrize(("replicas", "member_states"), MATRIX)
def test_alerts_fire_exactly_as_expected(replicas, member_states, step, promtool_results):
    returncode, output = promtool_results[replicas, member_states, step]
    assert returncode == 0, output[-8000:]
    assert "SUCCESS" in output
