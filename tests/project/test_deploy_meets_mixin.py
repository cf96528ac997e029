"""The shipped deploy and the mixin work together, proven by `promtool test rules`.

ringwatch runs in `monitoring`, Cortex in its own namespace. The input series carry exactly the
labels Prometheus gives them: ringwatch's the target labels the Prometheus Operator makes from the
shipped ServiceMonitor (job, namespace, service, pod, container, endpoint, instance, then the
ServiceMonitor's own relabelings), kube-state-metrics' and Cortex's those of a stock
kube-prometheus-stack scrape (honorLabels keeps the StatefulSet's namespace). With them, the
"stale while a StatefulSet rolls out" variant of CortexRingRolloutStalled fires, and every query of
the Rollout progress dashboard returns data for the dashboards' `namespace` variable.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO
from support.deploy import K8S, k8s_object

RULES = REPO / "mixin" / "prometheus_rules.yaml"
ALERTS = REPO / "mixin" / "prometheus_alerts.yaml"
ROLLOUT_DASHBOARD = REPO / "dashboards" / "ringwatch-rollout-progress.json"
STEP = 15
STEPS = 80  # 20 minutes
EVAL = "9m"
TABLE = "cortex-ring"
RING = "collectors/ring"
STATEFULSET = "ingester-zone-a"
STATES = ("ACTIVE", "LEAVING", "PENDING", "JOINING", "LEFT", "READONLY")
# (member, state, heartbeat age series): one frozen since before the rollout, one healthy, one
# restarted pod JOINING again (for less than joiningStuckFor at EVAL).
MEMBERS = (
    ("ingester-zone-a-0", "ACTIVE", f"200+15x{STEPS}"),
    ("ingester-zone-a-1", "ACTIVE", f"5x{STEPS}"),
    ("ingester-zone-a-2", "JOINING", f"3x{STEPS}"),
)
# The Prometheus Operator's labels for one ServiceMonitor target; instance and pod differ per
# replica. ServiceMonitor relabelings then run on top.
REPLICA_LABELS = ("instance", "pod")


def kustomize_namespace() -> str:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())["namespace"]


def apply_relabelings(labels: dict[str, str], relabelings: list[dict[str, Any]]) -> dict[str, str]:
    """The ServiceMonitor's relabelings; only the form the shipped one uses is understood."""
    out = dict(labels)
    for rule in relabelings:
        assert rule.get("action", "replace") == "replace" and "sourceLabels" not in rule, rule
        out[rule["targetLabel"]] = rule["replacement"]
    return out


def ringwatch_targets(namespace: str, relabelings: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Target labels of the two ringwatch pods as the Prometheus Operator scrapes them."""
    monitor = k8s_object("ServiceMonitor")
    service = k8s_object("Service")
    assert "jobLabel" not in monitor["spec"], "job would come from a Service label"
    (endpoint,) = monitor["spec"]["endpoints"]
    (container,) = k8s_object("Deployment")["spec"]["template"]["spec"]["containers"]
    replicas = k8s_object("Deployment")["spec"]["replicas"]
    return [
        apply_relabelings(
            {
                "job": service["metadata"]["name"],
                "namespace": namespace,
                "service": service["metadata"]["name"],
                "pod": f"ringwatch-5c7f9b8d4-{suffix}",
                "container": container["name"],
                "endpoint": endpoint["port"],
                "instance": f"10.2.0.{i + 1}:10960",
            },
            relabelings,
        )
        for i, suffix in enumerate(["x7k2p", "q9w4z", "m3n8v"][:replicas])
    ]


def fmt(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def input_series(targets: list[dict[str, str]], cortex_namespace: str) -> list[dict[str, str]]:
    series: dict[str, str] = {}
    for target in targets:
        table = {**target, "table": TABLE}
        series[fmt("ringwatch_up", table)] = f"1x{STEPS}"
        for state in STATES:
            count = sum(1 for _, s, _ in MEMBERS if s == state)
            series[fmt("ringwatch_ring_members", {**table, "ring": RING, "state": state})] = (
                f"{count}x{STEPS}"
            )
        for member, state, ages in MEMBERS:
            m = {**table, "ring": RING, "member": member}
            series[fmt("ringwatch_member_heartbeat_age_seconds", m)] = ages
            # ringwatch's default stale threshold while a member's period is not known
            series[fmt("ringwatch_member_heartbeat_stale_threshold_seconds", m)] = f"60x{STEPS}"
            series[
                fmt(
                    "ringwatch_member_info",
                    {**m, "addr": f"{member}:9095", "member_zone": "zone-a"},
                )
            ] = f"1x{STEPS}"
            series[fmt("ringwatch_member_registered_timestamp_seconds", m)] = f"1700000000x{STEPS}"
            for s in STATES:  # --metrics.member-states=all, as the shipped ConfigMap says
                series[fmt("ringwatch_member_state", {**m, "state": s})] = (
                    f"{int(s == state)}x{STEPS}"
                )
    # kube-state-metrics as kube-prometheus-stack scrapes it (honorLabels: the StatefulSet's
    # namespace, not the exporter's).
    ksm = {
        "job": "kube-state-metrics",
        "namespace": cortex_namespace,
        "statefulset": STATEFULSET,
        "service": "kube-prometheus-stack-kube-state-metrics",
        "endpoint": "http",
        "container": "kube-state-metrics",
        "instance": "10.3.0.9:8080",
        "pod": "kube-prometheus-stack-kube-state-metrics-6b7d9c5f4-2x1q8",
    }
    series[fmt("kube_statefulset_replicas", ksm)] = f"3x{STEPS}"
    series[fmt("kube_statefulset_status_replicas_updated", ksm)] = f"1x{STEPS}"
    series[fmt("kube_statefulset_status_replicas_ready", ksm)] = f"2x{STEPS}"
    series[
        fmt("kube_statefulset_status_current_revision", {**ksm, "revision": f"{STATEFULSET}-6d5c8"})
    ] = f"1x{STEPS}"
    series[
        fmt("kube_statefulset_status_update_revision", {**ksm, "revision": f"{STATEFULSET}-7f9b2"})
    ] = f"1x{STEPS}"
    # Cortex's ingesters, as cortex-jsonnet's scrape config labels them.
    ingester = {
        "job": f"{cortex_namespace}/ingester",
        "namespace": cortex_namespace,
        "pod": "ingester-zone-a-1",
        "container": "ingester",
        "instance": "10.4.0.2:80",
        "kv_name": "ingester-lifecycler",
    }
    series[
        fmt(
            "cortex_kv_request_duration_seconds_count",
            {**ingester, "operation": "CAS", "status_code": "200"},
        )
    ] = f"0+3x{STEPS}"
    series[fmt("cortex_dynamodb_kv_cas_attempt_total", ingester)] = f"0+3x{STEPS}"
    return [{"series": name, "values": values} for name, values in series.items()]


def rollout_stalled_alert(targets: list[dict[str, str]]) -> dict[str, Any]:
    """The alert expected once, whatever the number of replicas: their labels folded away."""
    (rule,) = [
        r
        for g in yaml.safe_load(ALERTS.read_text())["groups"]
        for r in g["rules"]
        if r.get("alert") == "CortexRingRolloutStalled"
        and "state" not in r["labels"]
        and "ring" not in r["labels"]
    ]
    labels = {k: v for k, v in targets[0].items() if k not in REPLICA_LABELS}
    labels.update(table=TABLE, ring=RING, **rule["labels"])
    stale = sum(1 for _, _, ages in MEMBERS if int(ages.split("+")[0].split("x")[0]) > 90)
    annotations = {
        k: v.replace("{{ $labels.ring }}", RING)
        .replace("{{ $labels.table }}", TABLE)
        .replace("{{ $value }}", str(stale))
        for k, v in rule["annotations"].items()
    }
    return {"exp_labels": labels, "exp_annotations": annotations}


def panel_queries(dashboard: dict[str, Any], variables: dict[str, str]) -> list[tuple[str, str]]:
    """(panel title, query) of every query panel, the dashboard's variables filled in."""
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace(" or vector(0)", "")  # must not pass on its own
            for name, value in variables.items():
                expr = expr.replace(f"${name}", value)
            assert "$" not in expr.replace("$1", ""), expr
            out.append((panel["title"], expr))
    return out


def run_promtool(
    tmp_path: Path, tests: list[dict[str, Any]], rules: tuple[Path, Path] = (RULES, ALERTS)
) -> subprocess.CompletedProcess:
    order = [g["name"] for path in rules for g in yaml.safe_load(path.read_text())["groups"]]
    document = {
        "rule_files": [str(p) for p in rules],
        "evaluation_interval": f"{STEP}s",
        "group_eval_order": order,
        "tests": tests,
    }
    path = tmp_path / "deploy-meets-mixin.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return subprocess.run(
        ["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=300
    )


def shipped_cortex_namespace() -> str:
    relabelings = k8s_object("ServiceMonitor")["spec"]["endpoints"][0].get("relabelings", [])
    (namespace,) = [r["replacement"] for r in relabelings if r["targetLabel"] == "cortex_namespace"]
    return namespace


def rendered_mixin(
    tmp_path: Path, overrides: dict[str, Any]
) -> tuple[tuple[Path, Path], dict[str, Any]]:
    """(rules, alerts) files and the Rollout progress dashboard: committed, or rendered anew."""
    if not overrides:
        return (RULES, ALERTS), json.loads(ROLLOUT_DASHBOARD.read_text())
    sys.path.insert(0, str(REPO / "mixin"))
    import build

    out = build.render(overrides)
    rules, alerts = tmp_path / "rules.yaml", tmp_path / "alerts.yaml"
    rules.write_text(build.to_yaml(out["prometheus_rules"]))
    alerts.write_text(build.to_yaml(out["prometheus_alerts"]))
    return (rules, alerts), out["dashboards"][ROLLOUT_DASHBOARD.name]


# (setup, mixin _config overrides, whether the dashboards are checked too)
SETUPS = [
    ("shipped deploy", {}, True),
    # No target label, ringwatch scraped in Cortex's namespace: the alert joins on `namespace`
    # with the default knobs; the dashboards need cortexNamespaceLabel set to 'namespace'.
    ("in cortex's namespace, default mixin", {}, False),
    (
        "in cortex's namespace, cortexNamespaceLabel: namespace",
        {"cortexNamespaceLabel": "namespace"},
        True,
    ),
]


@pytest.mark.parametrize(("setup", "overrides", "dashboards"), SETUPS, ids=[s[0] for s in SETUPS])
def test_rollout_alert_fires_and_rollout_dashboard_has_data_with_real_labels(
    setup: str, overrides: dict[str, Any], dashboards: bool, tmp_path: Path
) -> None:
    cortex_namespace = shipped_cortex_namespace()
    if setup == "shipped deploy":
        relabelings = k8s_object("ServiceMonitor")["spec"]["endpoints"][0]["relabelings"]
        namespace = kustomize_namespace()
        assert namespace != cortex_namespace  # ringwatch outside Cortex's namespace
    else:
        relabelings, namespace = [], cortex_namespace
    targets = ringwatch_targets(namespace, relabelings)
    assert len(targets) == 2
    rules, dashboard = rendered_mixin(tmp_path, overrides)
    variables = {
        "cluster": ".*",
        "namespace": cortex_namespace,
        "table": ".*",
        "ring": ".*",
        "__rate_interval": "1m",
    }
    queries = panel_queries(dashboard, variables) if dashboards else []
    label = "cortex_namespace" if relabelings else "namespace"
    test = {
        "name": setup,
        "interval": f"{STEP}s",
        "input_series": input_series(targets, cortex_namespace),
        "alert_rule_test": [
            {
                "eval_time": EVAL,
                "alertname": "CortexRingRolloutStalled",
                "exp_alerts": [rollout_stalled_alert(targets)],
            }
        ],
        "promql_expr_test": [
            # What the dashboards' `namespace` variable offers: Cortex's namespace.
            {
                "expr": f'count by ({label}) (ringwatch_up{{job="ringwatch"}})',
                "eval_time": EVAL,
                "exp_samples": [{"labels": f'{{{label}="{cortex_namespace}"}}', "value": 2}],
            },
        ]
        + [
            {
                "expr": f"clamp_max(count({expr}), 1)",
                "eval_time": EVAL,
                "exp_samples": [{"labels": "{}", "value": 1}],
            }
            for _, expr in queries
        ],
    }
    result = run_promtool(tmp_path, [test], rules)
    assert result.returncode == 0, result.stdout + result.stderr
    print(
        f"{setup}: the alert fired once for 2 replicas; {len(queries)} dashboard queries "
        "returned data"
    )
    if dashboards:
        assert len(queries) >= 10


def test_the_rollout_alert_stays_silent_without_the_join_labels(tmp_path: Path) -> None:
    """The proof is not vacuous: with Cortex's StatefulSets in another namespace than the one the
    ServiceMonitor names, the stale-while-rolling-out variant does not fire."""
    relabelings = k8s_object("ServiceMonitor")["spec"]["endpoints"][0]["relabelings"]
    targets = ringwatch_targets(kustomize_namespace(), relabelings)
    test = {
        "name": "wrong namespace",
        "interval": f"{STEP}s",
        "input_series": input_series(targets, "elsewhere"),
        "alert_rule_test": [
            {"eval_time": EVAL, "alertname": "CortexRingRolloutStalled", "exp_alerts": []}
        ],
    }
    result = run_promtool(tmp_path, [test])
    assert result.returncode == 0, result.stdout + result.stderr


def test_servicemonitor_sets_the_label_the_mixin_joins_on() -> None:
    config = (REPO / "mixin" / "config.libsonnet").read_text()
    label = re.search(r"cortexNamespaceLabel: '([^']+)'", config).group(1)
    relabelings = k8s_object("ServiceMonitor")["spec"]["endpoints"][0]["relabelings"]
    assert [r["targetLabel"] for r in relabelings] == [label]
