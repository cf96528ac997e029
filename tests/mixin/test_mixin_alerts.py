"""The mixin's alerts, run by `promtool test rules` against timelines of what ringwatch would serve.

Each scenario simulates ring members as Cortex writes them and ringwatch as it scans and serves
them (snapshot kept while a scan fails, dropped after --snapshot.max-age), and states exactly which
alerts fire, with their labels and annotations, and which must not. Every scenario runs with one
ringwatch replica and with two (every ringwatch series twice, two `instance` values: each alert must
still fire exactly once, with the same labels and text), and with --metrics.member-states all and
current.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import yaml
from support import REPO
from support.cortexdata import HANG_FIXTURES

RENDERED_ALERTS = REPO / "mixin" / "prometheus_alerts.yaml"
RENDERED_RULES = REPO / "mixin" / "prometheus_rules.yaml"
RUNBOOK_BASE = yaml.safe_load(RENDERED_ALERTS.read_text())["groups"][0]["rules"][0]["annotations"][
    "runbook_url"].split("#")[0]
STEP = 15
TABLE = "cortex-ring"
RING = "collectors/ring"
SG_RING = "collectors/store-gateway"
NS = "cortex"
STATES = ("ACTIVE", "LEAVING", "PENDING", "JOINING", "LEFT", "READONLY")
FIXTURES = HANG_FIXTURES

MEMBER_ALERTS = (
    "CortexRingMemberHeartbeatStale",
    "CortexRingMemberCASStalled",
    "CortexRingMemberGhost",
    "CortexRingRolloutStalled",
    "CortexRingUnhealthyMembers",
)
ALL_ALERTS = (*MEMBER_ALERTS, "CortexIngesterCASFlatlined", "RingwatchScanFailing", "RingwatchDown",
              "RingwatchDynamoDBThrottled", "RingwatchDecodeErrors")


@dataclass
class Member:
    """A member's item as Cortex writes it: a write every `period` s from `born` until `frozen`."""

    name: str
    zone: str = ""
    ring: str = RING
    born: int = 0
    gone: int | None = None  # item deleted (clean leave)
    frozen: int | None = None  # last write at this time (hang, SIGKILL)
    states: tuple[tuple[int, str], ...] = ((0, "ACTIVE"),)
    period: int = 5

    def exists(self, t: int) -> bool:
        return self.born <= t and (self.gone is None or t < self.gone)

    def last_write(self, t: int) -> int:
        w = t if self.frozen is None else min(t, self.frozen)
        return self.born + (w - self.born) // self.period * self.period

    def state(self, t: int) -> str:
        written = self.last_write(t)
        return [s for at, s in self.states if at <= written][-1]

    def cas_change(self, t: int) -> int:
        # ringwatch's clock: the first scan that saw the current version.
        return -(-self.last_write(t) // STEP) * STEP


@dataclass
class Ringwatch:
    """What one ringwatch process serves for one table, scanning every STEP seconds."""

    members: list[Member]
    scan_ok: Callable[[int], bool] = lambda t: True
    loop_alive: Callable[[int], bool] = lambda t: True  # False: the scan loop is wedged
    max_age: int = 45

    def last_scan(self, t: int) -> int | None:
        scans = [s for s in range(0, t + 1, STEP) if self.loop_alive(s)]
        return scans[-1] if scans else None

    def last_success(self, t: int) -> int | None:
        ok = [s for s in range(0, t + 1, STEP) if self.loop_alive(s) and self.scan_ok(s)]
        return ok[-1] if ok else None

    def series(self, t: int, member_states: str) -> dict[tuple[str, tuple], float]:
        out: dict[tuple[str, tuple], float] = {}
        table = (("table", TABLE),)
        scan = self.last_scan(t)
        out["ringwatch_up", table] = 1.0 if scan is not None and self.scan_ok(scan) else 0.0
        good = self.last_success(t)
        if good is None:
            return out
        out["ringwatch_last_successful_scan_timestamp_seconds", table] = float(good)
        if t - good > self.max_age:
            return out
        counts: dict[tuple[str, str], int] = {}
        for m in self.members:
            if not m.exists(good):
                continue
            key = (*table, ("ring", m.ring), ("member", m.name))
            state = m.state(good)
            counts[m.ring, state] = counts.get((m.ring, state), 0) + 1
            out["ringwatch_member_heartbeat_age_seconds", key] = float(good - m.last_write(good))
            out["ringwatch_member_cas_last_change_timestamp_seconds", key] = float(
                m.cas_change(good))
            info = (*key, ("addr", f"{m.name}:9095"), ("member_zone", m.zone))
            out["ringwatch_member_info", info] = 1.0
            out["ringwatch_member_token_ownership_ratio", key] = 0.25
            for s in STATES if member_states == "all" else (state,):
                out["ringwatch_member_state", (*key, ("state", s))] = 1.0 if s == state else 0.0
        for ring in {m.ring for m in self.members}:
            for s in STATES:
                labels = (*table, ("ring", ring), ("state", s))
                out["ringwatch_ring_members", labels] = float(counts.get((ring, s), 0))
        return out


Series = dict[str, Callable[[int], float | None]]


@dataclass
class Scenario:
    name: str
    duration: int
    ringwatch: Ringwatch | None = None
    ringwatch_up_target: Callable[[int], float | None] = lambda t: 1.0
    ringwatch_extra: Series = field(default_factory=dict)  # per-replica series of ringwatch itself
    other: Series = field(default_factory=dict)  # series of Cortex and kube-state-metrics
    # (eval time, alert name) -> expected alerts: [(labels, annotations)]; [] means must not fire
    expect: list[tuple[int, str, list[tuple[dict, dict]]]] = field(default_factory=list)


def fmt_labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def values(fn: Callable[[int], float | None], duration: int) -> str:
    out, seen = [], False
    for t in range(0, duration + 1, STEP):
        v = fn(t)
        if v is None:
            out.append("stale" if seen else "_")
            seen = False
        else:
            out.append(repr(float(v)) if v != int(v) else str(int(v)))
            seen = True
    return " ".join(out)


def replica_labels(replica: int) -> dict[str, str]:
    return {"job": "ringwatch", "namespace": NS, "instance": f"10.1.0.{replica}:10960",
            "pod": f"ringwatch-{replica}"}


def input_series(sc: Scenario, replicas: int, member_states: str) -> list[dict]:
    series: list[dict] = []
    per_t = {t: sc.ringwatch.series(t, member_states) if sc.ringwatch else {}
             for t in range(0, sc.duration + 1, STEP)}
    names: dict[tuple[str, tuple], None] = {}
    for snap in per_t.values():
        names.update(dict.fromkeys(snap))
    for r in range(replicas):
        base = replica_labels(r)
        for key in names:
            metric, labels = key
            series.append({
                "series": metric + fmt_labels({**base, **dict(labels)}),
                "values": values(lambda t, k=key: per_t[t].get(k), sc.duration),
            })
        series.append({"series": "up" + fmt_labels(base),
                       "values": values(sc.ringwatch_up_target, sc.duration)})
        for s, fn in sc.ringwatch_extra.items():
            metric, _, rest = s.partition("{")
            extra = dict(re.findall(r'(\w+)="([^"]*)"', rest))
            series.append({"series": metric + fmt_labels({**base, **extra}),
                           "values": values(fn, sc.duration)})
    for s, fn in sc.other.items():
        series.append({"series": s, "values": values(fn, sc.duration)})
    return series


def runbook(alert: str) -> str:
    return f"{RUNBOOK_BASE}#{alert.lower()}"


def hms(seconds: int) -> str:
    """Prometheus' humanizeDuration for whole seconds of at least one."""
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    parts = [f"{d}d"] if d else []
    if d or h:
        parts.append(f"{h}h")
    if d or h or m:
        parts.append(f"{m}m")
    parts.append(f"{s}s")
    return " ".join(parts)


def member_labels(m: Member, **extra: str) -> dict[str, str]:
    labels = {"job": "ringwatch", "namespace": NS, "table": TABLE, "ring": m.ring, "member": m.name}
    if m.zone:
        labels["member_zone"] = m.zone
    return {**labels, **extra}


def member_text(m: Member) -> str:
    zone = f" (zone {m.zone})" if m.zone else ""
    return f"Member {m.name}{zone} of ring {m.ring} in table {TABLE}"


def stale_alert(m: Member, age: int) -> tuple[dict, dict]:
    return (member_labels(m, severity="warning"), {
        "summary": "A Cortex ring member has stopped heartbeating.",
        "description": f"{member_text(m)} last heartbeated {hms(age)} before ringwatch read it"
                       " (threshold 90s). Cortex treats it as unhealthy after its heartbeat"
                       " timeout.",
        "runbook_url": runbook("CortexRingMemberHeartbeatStale"),
    })


def cas_alert(m: Member, age: int) -> tuple[dict, dict]:
    return (member_labels(m, severity="critical"), {
        "summary": "A Cortex ring member's item has stopped changing while it stays in the ring.",
        "description": f"{member_text(m)} has had no successful CAS write (its version has not"
                       f" moved) for {hms(age)} (threshold 2m): its heartbeat loop is stuck or the"
                       " process is gone.",
        "runbook_url": runbook("CortexRingMemberCASStalled"),
    })


def healthy_members(zones: bool = True) -> list[Member]:
    return [Member(f"ingester-{i}", zone=f"zone-{'abc'[i]}" if zones else "") for i in range(3)]


def silent(at: int, *alerts: str) -> list[tuple[int, str, list]]:
    return [(at, a, []) for a in alerts]


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
            *silent(360, *ALL_ALERTS),
            (600, "CortexRingMemberHeartbeatStale", [stale_alert(frozen, 300)]),
            (600, "CortexRingMemberCASStalled", [cas_alert(frozen, 300)]),
            *silent(600, "CortexRingMemberGhost", "CortexRingRolloutStalled",
                    "CortexRingUnhealthyMembers", "RingwatchScanFailing"),
        ],
    )


def ghost_and_stuck_leaving() -> Scenario:
    ghost = Member("ingester-0", zone="zone-a", frozen=60)
    leaving = Member("ingester-1", zone="zone-b", frozen=60,
                     states=((0, "ACTIVE"), (60, "LEAVING")))
    ms = [ghost, leaving, Member("ingester-2", zone="zone-c")]
    return Scenario(
        "a dead ACTIVE member is a ghost; one frozen in LEAVING is a stalled rollout, not a ghost",
        duration=1500,
        ringwatch=Ringwatch(ms),
        expect=[
            *silent(1080, "CortexRingMemberGhost"),
            *silent(900, "CortexRingRolloutStalled"),
            (1440, "CortexRingMemberGhost", [(member_labels(ghost, severity="warning"), {
                "summary": "A Cortex ring member is ACTIVE but dead: it must be forgotten.",
                "description": f"{member_text(ghost)} is ACTIVE but its last heartbeat is "
                               f"{hms(1380)} old (threshold 15m): it died without leaving the ring"
                               " and still owns tokens. Forget it once its process is confirmed"
                               " gone.",
                "runbook_url": runbook("CortexRingMemberGhost"),
            })]),
            (1440, "CortexRingRolloutStalled", [(
                member_labels(leaving, severity="critical", state="LEAVING"), {
                    "summary": "A Cortex ring member is stuck in a transitional state.",
                    "description": f"{member_text(leaving)} has been LEAVING for more than 15m.",
                    "runbook_url": runbook("CortexRingRolloutStalled"),
                })]),
            # two zones stale: replication no longer holds
            (1440, "CortexRingUnhealthyMembers", [unhealthy_alert(2)]),
        ],
    )


def unhealthy_alert(domains: int) -> tuple[dict, dict]:
    return ({"job": "ringwatch", "namespace": NS, "table": TABLE, "ring": RING,
             "severity": "critical"}, {
        "summary": "Too many stale members in a Cortex ring for its replication to hold.",
        "description": f"Ring {RING} in table {TABLE} has stale members in {domains} failure"
                       " domains (zones, or members if the ring has no zones); at most 1 can be"
                       " lost. Writes and reads of some series fail their quorum.",
        "runbook_url": runbook("CortexRingUnhealthyMembers"),
    })


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
    ms[1].frozen = 120
    return Scenario(
        "ring without zones: two stale members are too many, one is not",
        duration=420,
        ringwatch=Ringwatch(ms),
        expect=[*silent(240, "CortexRingUnhealthyMembers"),
                (360, "CortexRingUnhealthyMembers", [unhealthy_alert(2)])],
    )


def clean_rolling_restart() -> Scenario:
    # ingester-1 leaves cleanly (LEAVING, heartbeating, for its 30s final sleep), its item is
    # deleted, the new pod registers PENDING then ACTIVE with new tokens; the StatefulSet rolls.
    old = Member("ingester-1", zone="zone-b", gone=330, states=((0, "ACTIVE"), (300, "LEAVING")))
    new = Member("ingester-1", zone="zone-b", born=360, states=((360, "PENDING"), (375, "ACTIVE")))
    ms = [healthy_members()[0], old, new, healthy_members()[2]]
    sts = {"job": "kube-state-metrics", "namespace": NS, "statefulset": "ingester-zone-b",
           "instance": "ksm:8080"}
    return Scenario(
        "a clean rolling restart: no member alert",
        duration=1200,
        ringwatch=Ringwatch(ms),
        other={
            "kube_statefulset_status_current_revision" + fmt_labels({**sts, "revision": "r1"}):
                lambda t: 1 if t < 420 else None,
            "kube_statefulset_status_current_revision" + fmt_labels({**sts, "revision": "r2"}):
                lambda t: 1 if t >= 420 else None,
            "kube_statefulset_status_update_revision" + fmt_labels({**sts, "revision": "r1"}):
                lambda t: 1 if t < 290 else None,
            "kube_statefulset_status_update_revision" + fmt_labels({**sts, "revision": "r2"}):
                lambda t: 1 if t >= 290 else None,
            "kube_statefulset_replicas" + fmt_labels(sts): lambda t: 1,
            "kube_statefulset_status_replicas_updated" + fmt_labels(sts):
                lambda t: 0 if 290 <= t < 420 else 1,
        },
        expect=[e for t in range(0, 1201, 60) for e in silent(t, *MEMBER_ALERTS)],
    )


def blind() -> Scenario:
    ms = healthy_members()
    ms[1].frozen = 60
    return Scenario(
        "ringwatch blind (ringwatch_up 0, then member series gone): only RingwatchScanFailing",
        duration=900,
        ringwatch=Ringwatch(ms, scan_ok=lambda t: t < 300),
        expect=[
            (240, "CortexRingMemberHeartbeatStale", [stale_alert(ms[1], 180)]),
            *[e for t in (315, 360, 720) for e in silent(t, *MEMBER_ALERTS)],
            *silent(540, "RingwatchScanFailing"),
            (720, "RingwatchScanFailing", [scan_failing_alert("for " + hms(720 - 285))]),
            *silent(720, "RingwatchDown", "RingwatchDecodeErrors", "RingwatchDynamoDBThrottled",
                    "CortexIngesterCASFlatlined"),
        ],
    )


def scan_failing_alert(how: str) -> tuple[dict, dict]:
    return ({"job": "ringwatch", "namespace": NS, "table": TABLE, "severity": "warning"}, {
        "summary": "ringwatch cannot scan a table: member alerts for it are silenced.",
        "description": f"ringwatch has not scanned table {TABLE} successfully {how} (threshold"
                       " 3m). While it cannot, no ring member alert fires for this table.",
        "runbook_url": runbook("RingwatchScanFailing"),
    })


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
        expect=[*silent(60, "RingwatchScanFailing"),
                (180, "RingwatchScanFailing", [scan_failing_alert("since it started")])],
    )


def ringwatch_down() -> Scenario:
    return Scenario(
        "ringwatch not scraped",
        duration=600,
        ringwatch=Ringwatch(healthy_members()),
        ringwatch_up_target=lambda t: 1 if t < 60 else 0,
        expect=[
            *silent(300, "RingwatchDown"),
            (420, "RingwatchDown", [({"job": "ringwatch", "namespace": NS, "severity": "warning"}, {
                "summary": "ringwatch is not being scraped.",
                "description": "100% of the ringwatch targets of job ringwatch are down or absent; "
                               "without ringwatch no ring member alert can fire.",
                "runbook_url": runbook("RingwatchDown"),
            })]),
        ],
    )


def ringwatch_absent() -> Scenario:
    return Scenario(
        "no ringwatch target at all",
        duration=420,
        other={'up{job="cortex/ingester"}': lambda t: 1},
        ringwatch_up_target=lambda t: None,
        expect=[(360, "RingwatchDown", [({"job": "ringwatch", "severity": "warning"}, {
            "summary": "ringwatch is not being scraped.",
            "description": "100% of the ringwatch targets of job ringwatch are down or absent; "
                           "without ringwatch no ring member alert can fire.",
            "runbook_url": runbook("RingwatchDown"),
        })])],
    )


def throttled_and_decode_errors() -> Scenario:
    labels = {"job": "ringwatch", "namespace": NS, "table": TABLE}
    return Scenario(
        "throttled reads and undecodable items",
        duration=1200,
        ringwatch=Ringwatch(healthy_members()),
        ringwatch_extra={
            f'ringwatch_requests_total{{table="{TABLE}",operation="Scan",result="success"}}':
                lambda t: t,
            f'ringwatch_requests_total{{table="{TABLE}",operation="Scan",result="throttled"}}':
                lambda t: max(0, t - 60),
            f'ringwatch_decode_errors_total{{table="{TABLE}",reason="protobuf"}}':
                lambda t: max(0, t - 60) * 2,
            f'ringwatch_decode_errors_total{{table="{TABLE}",reason="snappy"}}': lambda t: 0,
        },
        expect=[
            *silent(600, "RingwatchDynamoDBThrottled"),
            *silent(300, "RingwatchDecodeErrors"),
            (1080, "RingwatchDynamoDBThrottled", [({**labels, "severity": "warning"}, {
                "summary": "ringwatch's reads of a DynamoDB table are being throttled.",
                "description": f"ringwatch's requests to table {TABLE} are throttled at 1/s: the"
                               " table's read capacity, which Cortex's ring also uses, is"
                               " exhausted.",
                "runbook_url": runbook("RingwatchDynamoDBThrottled"),
            })]),
            (600, "RingwatchDecodeErrors", [({**labels, "reason": "protobuf",
                                              "severity": "warning"}, {
                "summary": "ringwatch cannot decode ring items: members are hidden.",
                "description": f"Items of table {TABLE} fail to decode (protobuf) at 2/s: the"
                               " members they hold are missing from every ring metric and alert."
                               " Likely format drift after a Cortex upgrade.",
                "runbook_url": runbook("RingwatchDecodeErrors"),
            })]),
        ],
    )


def stuck_joining_per_ring() -> Scenario:
    ms = [*healthy_members(),
          Member("ingester-3", zone="zone-a", born=60, states=((60, "JOINING"),)),
          Member("store-gateway-0", zone="zone-a", ring=SG_RING, born=60,
                 states=((60, "JOINING"),))]
    ing, sg = ms[3], ms[4]

    def stuck(m: Member, extra: dict) -> tuple[dict, dict]:
        return (member_labels(m, severity="critical", state="JOINING", **extra), {
            "summary": "A Cortex ring member is stuck in a transitional state.",
            "description": f"{member_text(m)} has been JOINING for more than "
                           f"{'30m' if m.ring == SG_RING else '10m'}.",
            "runbook_url": runbook("CortexRingRolloutStalled"),
        })

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
    sts = {"job": "kube-state-metrics", "namespace": NS, "statefulset": "ingester",
           "instance": "ksm:8080"}
    update = "r2" if rolling else "r1"
    other = {
        "kube_statefulset_status_current_revision" + fmt_labels({**sts, "revision": "r1"}):
            lambda t: 1,
        "kube_statefulset_status_update_revision" + fmt_labels({**sts, "revision": update}):
            lambda t: 1,
        "kube_statefulset_replicas" + fmt_labels(sts): lambda t: 3,
        "kube_statefulset_status_replicas_updated" + fmt_labels(sts): lambda t: 2 if rolling else 3,
    }
    expected = [({"job": "ringwatch", "namespace": NS, "table": TABLE, "ring": RING,
                  "severity": "critical"}, {
        "summary": "A Cortex StatefulSet rollout is stuck on stale ring members.",
        "description": f"Ring {RING} in table {TABLE} has had 1 stale members for more than 5m"
                       " while a StatefulSet carrying it is being updated: a pod is likely hung on"
                       " shutdown and its item is frozen.",
        "runbook_url": runbook("CortexRingRolloutStalled"),
    })]
    return Scenario(
        f"a stale member {'during' if rolling else 'without'} a StatefulSet update",
        duration=720,
        ringwatch=Ringwatch(ms),
        other=other,
        expect=[*silent(480, "CortexRingRolloutStalled"),
                (660, "CortexRingRolloutStalled", expected if rolling else [])],
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
    ok = ('cortex_kv_request_duration_seconds_count{kv_name="ingester-lifecycler",operation="CAS",'
          'role="primary",status_code="200",type="dynamodb"}')
    failed = ok.replace('status_code="200"', 'status_code="500"')
    get = ok.replace('operation="CAS"', 'operation="GET"')
    assert attempts in before and ok in before and get in before
    assert failed in fixture_series("ingester-metrics-hang-60s.txt")
    hang, per_step = 300, 3  # heartbeats every 5 s

    def grow(start: float, until: int | None = None,
             since: int = 0) -> Callable[[int], float | None]:
        def f(t: int) -> float | None:
            if t < since:
                return None
            end = t if until is None else min(t, until)
            return start + per_step * (end - since) // STEP
        return f

    def target(i: int) -> dict[str, str]:
        return {"job": "cortex/ingester", "namespace": NS, "instance": f"10.0.0.{i}:80",
                "pod": f"ingester-{i}"}

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
        return ({**target(i), "severity": "critical"}, {
            "summary": "A Cortex ingester is up but its ring CAS writes stopped succeeding.",
            "description": f"Ingester ingester-{i} (job cortex/ingester) had no successful ring"
                           f" CAS in the last 3m while answering scrapes; it made"
                           f" {attempts_in_window} CAS attempts in that time (0: a request hangs"
                           " without a deadline; more: every attempt fails). Its ring entry is"
                           " frozen.",
            "runbook_url": runbook("CortexIngesterCASFlatlined"),
        })

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
        ringwatch=Ringwatch([*healthy_members(),
                             Member("store-gateway-0", ring=SG_RING, zone="zone-a")]),
        ringwatch_extra={
            f'ringwatch_requests_total{{table="{TABLE}",operation="Scan",result="success"}}':
                lambda t: t,
            f'ringwatch_decode_errors_total{{table="{TABLE}",reason="protobuf"}}': lambda t: 0,
        },
        expect=[e for t in (600, 1800) for e in silent(t, *ALL_ALERTS)],
    )


SCENARIOS = [
    frozen_member, ghost_and_stuck_leaving, unhealthy_zones, unhealthy_zoneless,
    clean_rolling_restart, blind, wedged_loop, never_scanned, ringwatch_down, ringwatch_absent,
    throttled_and_decode_errors, stuck_joining_per_ring, lambda: rollout_stuck_on_hung_pod(True),
    lambda: rollout_stuck_on_hung_pod(False), ingester_cas, healthy,
]


def promtool_tests(replicas: int, member_states: str) -> dict:
    tests = []
    for make in SCENARIOS:
        sc = make()
        tests.append({
            "name": sc.name,
            "interval": f"{STEP}s",
            "input_series": input_series(sc, replicas, member_states),
            "alert_rule_test": [
                {"eval_time": f"{t}s", "alertname": name,
                 "exp_alerts": [{"exp_labels": labels, "exp_annotations": ann}
                                for labels, ann in alerts]}
                for t, name, alerts in sc.expect
            ],
        })
    # Recording rules first, so alerts read this evaluation's records (promtool's order is random).
    order = [g["name"] for path in (RENDERED_RULES, RENDERED_ALERTS)
             for g in yaml.safe_load(path.read_text())["groups"]]
    return {"rule_files": [str(RENDERED_RULES), str(RENDERED_ALERTS)],
            "evaluation_interval": f"{STEP}s", "group_eval_order": order, "tests": tests}


# One replica with every state series, two replicas with only the current state: each mode is
# covered and the suite stays short (promtool takes seconds per run).
MATRIX = [(1, "all"), (2, "current")]


@pytest.fixture(scope="module")
def promtool_results(tmp_path_factory) -> dict[tuple[int, str], tuple[int, str]]:
    """All runs at once: promtool takes seconds per run and the runs are independent."""
    tmp = tmp_path_factory.mktemp("mixin-alerts")
    procs = {}
    for replicas, states in MATRIX:
        path = tmp / f"alerts-{replicas}-{states}.yaml"
        path.write_text(yaml.safe_dump(promtool_tests(replicas, states), sort_keys=False))
        procs[replicas, states] = subprocess.Popen(
            ["promtool", "test", "rules", str(path)], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
    return {key: (p.wait(timeout=300), p.stdout.read()) for key, p in procs.items()}


def test_every_alert_has_a_firing_and_a_silent_case():
    fired, silenced = set(), set()
    for make in SCENARIOS:
        for _, name, alerts in make().expect:
            (fired if alerts else silenced).add(name)
    assert fired == set(ALL_ALERTS)
    assert silenced == set(ALL_ALERTS)


@pytest.mark.parametrize(("replicas", "member_states"), MATRIX)
def test_alerts_fire_exactly_as_expected(replicas, member_states, promtool_results):
    returncode, output = promtool_results[replicas, member_states]
    assert returncode == 0, output[-8000:]
    assert "SUCCESS" in output
