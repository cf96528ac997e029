"""Timelines of what ringwatch serves, as `promtool test rules` input, for the mixin's tests.

Members write their items as Cortex does (a write every `period` s, or an explicit schedule);
ringwatch scans every `step` s (scrapes and rule evaluations run at the same instants), keeps its
snapshot while a scan fails, drops it after --snapshot.max-age, learns each member's heartbeat
period and publishes the stale threshold the exporter's own rule (StaleRule) gives for it. A
scenario states which alerts fire at which evaluation.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ringwatch.snapshot.problems import StaleRule
from support import REPO

MIXIN = REPO / "mixin"
STEP = 15
TABLE = "cortex-ring"
RING = "collectors/ring"
SG_RING = "collectors/store-gateway"
NS = "cortex"
STATES = ("ACTIVE", "LEAVING", "PENDING", "JOINING", "LEFT", "READONLY")


@dataclass
class Member:
    """A member's item as Cortex writes it: a write every `period` s from `born` until `frozen`
    (or at the times `writes` gives), its timestamps `skew` s behind (negative: ahead)."""

    name: str
    zone: str = ""
    ring: str = RING
    born: int = 0
    gone: int | None = None  # item deleted (clean leave)
    frozen: int | None = None  # last write at this time (hang, SIGKILL)
    states: tuple[tuple[int, str], ...] = ((0, "ACTIVE"),)
    period: int = 5
    skew: int = 0
    writes: tuple[int, ...] | None = None  # explicit write times (a latency spike)

    def exists(self, t: int) -> bool:
        """Whether the item is in the table at `t`."""
        return self.born <= t and (self.gone is None or t < self.gone)

    def last_write(self, t: int) -> int:
        """Time of the last write at or before `t` (the member's true clock)."""
        w = t if self.frozen is None else min(t, self.frozen)
        if self.writes is not None:
            return max(x for x in (self.born, *self.writes) if x <= w)
        return self.born + (w - self.born) // self.period * self.period

    def version(self, t: int) -> int:
        """The item's `version`: writes since it was created."""
        w = t if self.frozen is None else min(t, self.frozen)
        if self.writes is not None:
            return 1 + sum(1 for x in self.writes if self.born < x <= w)
        return 1 + (w - self.born) // self.period

    def timestamp(self, t: int) -> int:
        """The heartbeat timestamp in the item (the member's clock)."""
        return self.last_write(t) - self.skew

    def state(self, t: int) -> str:
        """The state written by the last write at or before `t`."""
        written = self.last_write(t)
        return [s for at, s in self.states if at <= written][-1]


def spike_writes(
    born: int, period: int, start: int, end: int, until: int, delay_periods: int = 2
) -> tuple[int, ...]:
    """Write times of a member whose every heartbeat between `start` and `end` takes
    `delay_periods` periods (ticks missed meanwhile are dropped, as Go's ticker does)."""
    out, t = [], born + period
    while t <= until:
        if start <= t < end:
            t += delay_periods * period
            out.append(t)
            t += period - (t - born) % period or period
        else:
            out.append(t)
            t += period
    return tuple(out)


@dataclass
class Ringwatch:
    """What one ringwatch process serves for one table, scanning every `step` seconds.

    `restarts`: at each time r the process is gone for one step (no target, no series), then a
    new process scans from r + step on, remembering nothing (CAS first-seen times, periods)."""

    members: list[Member]
    scan_ok: Callable[[int], bool] = lambda t: True
    loop_alive: Callable[[int], bool] = lambda t: True  # False: the scan loop is wedged
    max_age: int | None = None  # --snapshot.max-age; default 3 scans
    step: int = STEP
    restarts: tuple[int, ...] = ()
    # The stale threshold published for a member of this learned period (None: not known yet).
    threshold: Callable[[float | None], float] = StaleRule().threshold

    down_from: int | None = None  # the process is down (its scrape fails) from then on

    def down(self, t: int) -> bool:
        """Whether the process is gone at `t` (restarting, or down for good)."""
        return any(r <= t < r + self.step for r in self.restarts) or (
            self.down_from is not None and t >= self.down_from
        )

    def started(self, t: int) -> int:
        """When the process serving at `t` started."""
        return max([0, *(r + self.step for r in self.restarts if r + self.step <= t)])

    def scans(self, t: int) -> list[int]:
        start = self.started(t)
        return [s for s in range(start, t + 1, self.step) if self.loop_alive(s)]

    def good_scans(self, t: int) -> list[int]:
        return [s for s in self.scans(t) if self.scan_ok(s)]

    def cas_change(self, m: Member, good: int) -> int:
        """ringwatch's clock: the first successful scan of this process that saw the version."""
        version = m.version(good)
        first = good
        for s in reversed(self.good_scans(good)):
            if not m.exists(s) or m.version(s) != version:
                break
            first = s
        return first

    def period(self, m: Member, good: int) -> float | None:
        """The heartbeat period ringwatch learned for `m` by `good`: each sample min(step, max
        age), raised up to step / beats by the versions; the largest of the last 8, once 3."""
        samples: list[int] = []
        old: int | None = None
        old_version = 0
        max_age = 0.0
        for s in self.good_scans(good):
            if not m.exists(s):
                continue
            ts, version = m.timestamp(s), m.version(s)
            if old is not None and ts == old:
                max_age = max(max_age, s - ts)
                continue
            if old is not None and ts > old:
                step, beats = ts - old, version - old_version
                bound = max(max_age, step / beats) if beats > 0 else max_age
                samples.append(max(1, math.ceil(min(step, bound))))
            old, old_version, max_age = ts, version, s - ts
        window = samples[-8:]
        return float(max(window)) if len(window) >= 3 else None

    def series(self, t: int, member_states: str) -> dict[tuple[str, tuple], float]:
        """Every series this process serves at `t` (none while it is down)."""
        out: dict[tuple[str, tuple], float] = {}
        if self.down(t):
            return out
        table = (("table", TABLE),)
        scans = self.scans(t)
        out["ringwatch_up", table] = 1.0 if scans and self.scan_ok(scans[-1]) else 0.0
        goods = self.good_scans(t)
        if not goods:
            return out
        good = goods[-1]
        out["ringwatch_last_successful_scan_timestamp_seconds", table] = float(good)
        if t - good > (3 * self.step if self.max_age is None else self.max_age):
            return out
        counts: dict[tuple[str, str], int] = {}
        for m in self.members:
            if not m.exists(good):
                continue
            key = (*table, ("ring", m.ring), ("member", m.name))
            state = m.state(good)
            counts[m.ring, state] = counts.get((m.ring, state), 0) + 1
            out["ringwatch_member_heartbeat_age_seconds", key] = float(good - m.timestamp(good))
            out["ringwatch_member_heartbeat_timestamp_seconds", key] = float(m.timestamp(good))
            out["ringwatch_member_cas_writes_total", key] = float(m.version(good))
            out["ringwatch_member_cas_last_change_timestamp_seconds", key] = float(
                self.cas_change(m, good)
            )
            period = self.period(m, good)
            if period is not None:
                out["ringwatch_member_heartbeat_period_seconds", key] = period
            out["ringwatch_member_heartbeat_stale_threshold_seconds", key] = self.threshold(period)
            info = (*key, ("addr", f"{m.name}:9095"), ("member_zone", m.zone))
            out["ringwatch_member_info", info] = 1.0
            out["ringwatch_member_token_ownership_ratio", key] = 0.25
            for s in STATES if member_states == "all" else (state,):
                out["ringwatch_member_state", (*key, ("state", s))] = 1.0 if s == state else 0.0
        for ring in sorted({m.ring for m in self.members}):
            for s in STATES:
                labels = (*table, ("ring", ring), ("state", s))
                out["ringwatch_ring_members", labels] = float(counts.get((ring, s), 0))
        return out


Series = dict[str, Callable[[int], float | None]]
Expected = list[tuple[int, str, list[tuple[dict, dict | None]]]]


@dataclass
class Scenario:
    """A timeline and what must fire when. Expected alerts carry labels and annotations (None:
    annotations not checked); [] means the alert must not fire at that evaluation."""

    name: str
    duration: int
    ringwatch: Ringwatch | None = None
    # one Ringwatch per replica, overriding `ringwatch` and the replica count of the run
    replicas: list[Ringwatch] | None = None
    ringwatch_up_target: Callable[[int], float | None] = lambda t: 1.0
    scrape_fails: Callable[[int], bool] = lambda t: False  # every ringwatch target, all series
    ringwatch_extra: Series = field(default_factory=dict)  # per-replica series of ringwatch itself
    other: Series = field(default_factory=dict)  # series of Cortex and kube-state-metrics
    expect: Expected = field(default_factory=list)
    step: int = STEP
    # (eval time, PromQL expression, [(series as `name{labels}`, value)]) for promql_expr_test
    records: list[tuple[int, str, list[tuple[str, float]]]] = field(default_factory=list)


def fmt_labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def number(v: float) -> str:
    """A sample value as promtool reads it, without a trailing '.0'."""
    return str(int(v)) if v == int(v) else repr(float(v))


def values(fn: Callable[[int], float | None], duration: int, step: int = STEP) -> str:
    """promtool's expanded notation, runs folded ('0+15x4' for 0 15 30 45 60, '_x3' for three
    missing samples); a series that ends gets a staleness marker (as a scrape would)."""
    samples: list[float | str | None] = []
    seen = False
    for t in range(0, duration + 1, step):
        v = fn(t)
        if v is None:
            samples.append("stale" if seen else None)
            seen = False
        else:
            samples.append(float(v))
            seen = True
    out: list[str] = []
    i = 0
    while i < len(samples):
        v = samples[i]
        j = i + 1
        if v is None or v == "stale":
            while v is None and j < len(samples) and samples[j] is None:
                j += 1
            out.append("stale" if v == "stale" else ("_" if j - i == 1 else f"_x{j - i}"))
        else:
            nxt = samples[j] if j < len(samples) else None
            if isinstance(nxt, float):
                delta = nxt - v
                while (
                    j < len(samples)
                    and isinstance(samples[j], float)
                    and samples[j] == v + (j - i) * delta
                ):
                    j += 1
            if j - i == 1:
                out.append(number(v))
            elif delta == 0:
                out.append(f"{number(v)}x{j - i - 1}")
            else:
                sign = "+" if delta > 0 else "-"
                out.append(f"{number(v)}{sign}{number(abs(delta))}x{j - i - 1}")
        i = j
    return " ".join(out)


def replica_labels(replica: int) -> dict[str, str]:
    return {
        "job": "ringwatch",
        "namespace": NS,
        "instance": f"10.1.0.{replica}:10960",
        "pod": f"ringwatch-{replica}",
    }


def input_series(sc: Scenario, replicas: int, member_states: str) -> list[dict]:
    """promtool input series: every ringwatch series once per replica, then the other series."""
    processes = sc.replicas or [sc.ringwatch] * replicas
    series: list[dict] = []
    times = range(0, sc.duration + 1, sc.step)
    for r, rw in enumerate(processes):
        per_t = {
            t: rw.series(t, member_states) if rw and not sc.scrape_fails(t) else {} for t in times
        }
        names: dict[tuple[str, tuple], None] = {}
        for snap in per_t.values():
            names.update(dict.fromkeys(snap))
        base = replica_labels(r)
        for key in names:
            metric, labels = key
            series.append(
                {
                    "series": metric + fmt_labels({**base, **dict(labels)}),
                    "values": values(lambda t, k=key, p=per_t: p[t].get(k), sc.duration, sc.step),
                }
            )

        def up(t: int, rw: Ringwatch | None = rw) -> float | None:
            if sc.scrape_fails(t) or (rw is not None and rw.down(t)):
                return 0.0
            return sc.ringwatch_up_target(t)

        series.append(
            {"series": "up" + fmt_labels(base), "values": values(up, sc.duration, sc.step)}
        )
        for s, fn in sc.ringwatch_extra.items():
            metric, _, rest = s.partition("{")
            extra = dict(re.findall(r'(\w+)="([^"]*)"', rest))
            series.append(
                {
                    "series": metric + fmt_labels({**base, **extra}),
                    "values": values(fn, sc.duration, sc.step),
                }
            )
    for s, fn in sc.other.items():
        series.append({"series": s, "values": values(fn, sc.duration, sc.step)})
    return series


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


def ring_labels(ring: str = RING, **extra: str) -> dict[str, str]:
    return {"job": "ringwatch", "namespace": NS, "table": TABLE, "ring": ring, **extra}


def silent(at: int, *alerts: str) -> Expected:
    return [(at, a, []) for a in alerts]


def rule_files(rules_dir: Path = MIXIN) -> list[Path]:
    return [rules_dir / "prometheus_rules.yaml", rules_dir / "prometheus_alerts.yaml"]


def promtool_doc(
    scenarios: Iterable[Scenario],
    replicas: int,
    member_states: str,
    rules_dir: Path = MIXIN,
    written_to: Path | None = None,
) -> dict:
    """One `promtool test rules` file; every scenario must share one step. Rule files are named
    relative to `written_to`, the folder the file is written to (promtool resolves them there)."""
    scenarios = list(scenarios)
    steps = {sc.step for sc in scenarios}
    assert len(steps) == 1, steps
    files = rule_files(rules_dir)
    tests = []
    for sc in scenarios:
        tests.append(
            {
                "name": sc.name,
                "interval": f"{sc.step}s",
                "input_series": input_series(sc, replicas, member_states),
                "alert_rule_test": [
                    {
                        "eval_time": f"{t}s",
                        "alertname": name,
                        "exp_alerts": [
                            {
                                "exp_labels": labels,
                                **({"exp_annotations": ann} if ann is not None else {}),
                            }
                            for labels, ann in alerts
                        ],
                    }
                    for t, name, alerts in sc.expect
                ],
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": f"{t}s",
                        "exp_samples": [
                            {"labels": series, "value": value} for series, value in samples
                        ],
                    }
                    for t, expr, samples in sc.records
                ],
            }
        )
    # Recording rules first, so alerts read this evaluation's records (promtool's order is random).
    order = [g["name"] for path in files for g in yaml.safe_load(path.read_text())["groups"]]
    names = [str(p) if written_to is None else os.path.relpath(p, written_to) for p in files]
    return {
        "rule_files": names,
        "evaluation_interval": f"{steps.pop()}s",
        "group_eval_order": order,
        "tests": tests,
    }


def promtool_yaml(doc: dict) -> str:
    """A promtool test file as committed: keys in order, each series' values on one line."""
    return yaml.safe_dump(doc, sort_keys=False, width=1 << 16, allow_unicode=True)


def start_promtool(path: Path) -> subprocess.Popen:
    """Start `promtool test rules` on the file at `path` (stdout and stderr piped)."""
    return subprocess.Popen(
        ["promtool", "test", "rules", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def failed_tests(output: str, names: Iterable[str]) -> list[str]:
    """Names of the scenarios promtool reports as failed."""
    return [n for n in names if re.search(rf"name: {re.escape(n)},", output)]
