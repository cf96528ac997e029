"""The shipped inhibition rules never downgrade: read mechanically from the rendered files, no
rule lets an alert mute one of higher severity, and no rule mutes ringwatch's blindness."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from support import REPO

MIXIN = REPO / "mixin"
ALERTMANAGER_EXAMPLE = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
RANK = {"info": 0, "warning": 1, "critical": 2}
BLIND_ALERTS = {"RingwatchScanFailing", "RingwatchDown"}


def matches(matchers: list[str], labels: dict[str, str]) -> bool:
    """Whether an alert with `labels` satisfies every Alertmanager matcher."""
    for matcher in matchers:
        name, op, value = re.fullmatch(r'(\w+)(=~|!~|!=|=)"(.*)"', matcher).groups()
        have = labels.get(name, "")
        ok = {
            "=": have == value,
            "!=": have != value,
            "=~": re.fullmatch(value, have) is not None,
            "!~": re.fullmatch(value, have) is None,
        }[op]
        if not ok:
            return False
    return True


def rendered_alerts(path: Path = MIXIN / "prometheus_alerts.yaml") -> list[dict[str, str]]:
    """Each alert rule's name and static labels (its severity among them)."""
    groups = yaml.safe_load(path.read_text())["groups"]
    return [{"alertname": r["alert"], **r.get("labels", {})} for g in groups for r in g["rules"]]


def downgrades(inhibit_rules: list[dict], alerts: list[dict[str, str]]) -> list[str]:
    """Every (source rule, target rule) pair an inhibit rule lets mute a higher severity."""
    found = []
    for rule in inhibit_rules:
        for source in alerts:
            if not matches(rule.get("source_matchers", []), source):
                continue
            for target in alerts:
                if not matches(rule.get("target_matchers", []), target):
                    continue
                if "severity" in rule.get("equal", []) and (
                    source["severity"] != target["severity"]
                ):
                    continue
                if RANK[source["severity"]] < RANK[target["severity"]]:
                    found.append(
                        f"{source['alertname']} ({source['severity']}) mutes "
                        f"{target['alertname']} ({target['severity']})"
                    )
    return found


def shipped_inhibit_rules() -> list[list[dict]]:
    return [
        yaml.safe_load((MIXIN / "alertmanager_inhibit_rules.yaml").read_text())["inhibit_rules"],
        yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text())["inhibit_rules"],
    ]


@pytest.mark.parametrize("rules", shipped_inhibit_rules(), ids=["mixin", "example config"])
def test_no_inhibit_rule_lets_an_alert_mute_one_of_higher_severity(rules):
    assert rules
    assert downgrades(rules, rendered_alerts()) == []


def test_the_check_finds_a_downgrade_when_there_is_one():
    warning_ghost = [
        {**a, "severity": "warning"} if a["alertname"] == "CortexRingMemberGhost" else a
        for a in rendered_alerts()
    ]
    rule = {
        "source_matchers": ['alertname="CortexRingMemberGhost"'],
        "target_matchers": ['alertname="CortexRingMemberHeartbeatStale"'],
        "equal": ["table", "ring", "member"],
    }
    assert set(downgrades([rule], warning_ghost)) == {
        "CortexRingMemberGhost (warning) mutes CortexRingMemberHeartbeatStale (critical)"
    }
    assert downgrades([{**rule, "equal": [*rule["equal"], "severity"]}], warning_ghost) == []


def test_a_ghost_is_at_least_as_severe_as_the_stale_member_it_was():
    severities = {(a["alertname"], a["severity"]) for a in rendered_alerts()}
    ghost = {s for name, s in severities if name == "CortexRingMemberGhost"}
    stale = {s for name, s in severities if name == "CortexRingMemberHeartbeatStale"}
    assert min(RANK[s] for s in ghost) >= max(RANK[s] for s in stale)


@pytest.mark.parametrize("rules", shipped_inhibit_rules(), ids=["mixin", "example config"])
def test_going_blind_is_critical_and_mutes_nothing_nor_is_muted(rules):
    alerts = rendered_alerts()
    blind = [a for a in alerts if a["alertname"] in BLIND_ALERTS]
    assert {a["alertname"] for a in blind} == BLIND_ALERTS
    assert {a["severity"] for a in blind} == {"critical"}
    for rule in rules:
        assert not any(matches(rule["source_matchers"], a) for a in blind), rule
        assert not any(matches(rule["target_matchers"], a) for a in blind), rule


def amtool_route(*labels: str) -> str:
    out = subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER_EXAMPLE}", *labels],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool not installed")
@pytest.mark.parametrize("alertname", sorted(BLIND_ALERTS))
def test_blindness_reaches_the_cortex_pager_in_the_example_config(alertname):
    assert (
        amtool_route(f"alertname={alertname}", "severity=critical", "table=cortex-ring")
        == "cortex-pager,monitoring-team"
    )


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool not installed")
@pytest.mark.parametrize(
    "alertname",
    ["CortexRingMemberHeartbeatStale", "CortexRingMemberGhost", "CortexRingMemberCASStalled"],
)
def test_every_critical_member_alert_reaches_the_cortex_pager(alertname):
    assert amtool_route(f"alertname={alertname}", "severity=critical") == "cortex-pager"


ALERTMANAGER_CONFIG_CR = REPO / "deploy" / "kubernetes" / "alertmanagerconfig.yaml"


def plain_rules_of(cr: dict) -> list[dict]:
    """An AlertmanagerConfig's inhibit rules read back as Alertmanager's own matchers."""

    def matchers(found: list[dict]) -> list[str]:
        assert all(set(m) == {"name", "value", "matchType"} for m in found), found
        assert all(m["matchType"] in ("=", "!=", "=~", "!~") for m in found), found
        return [f'{m["name"]}{m["matchType"]}"{m["value"]}"' for m in found]

    return [
        {
            "equal": r["equal"],
            "source_matchers": matchers(r["sourceMatch"]),
            "target_matchers": matchers(r["targetMatch"]),
        }
        for r in cr["spec"]["inhibitRules"]
    ]


def test_the_alertmanager_config_for_the_operator_carries_the_same_inhibit_rules():
    [cr] = [d for d in yaml.safe_load_all(ALERTMANAGER_CONFIG_CR.read_text()) if d]
    assert (cr["apiVersion"], cr["kind"]) == (
        "monitoring.coreos.com/v1alpha1",
        "AlertmanagerConfig",
    )
    assert set(cr) == {"apiVersion", "kind", "metadata", "spec"} and set(cr["spec"]) == {
        "inhibitRules"
    }
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", cr["metadata"]["name"])
    plain = yaml.safe_load((MIXIN / "alertmanager_inhibit_rules.yaml").read_text())
    assert plain_rules_of(cr) == [
        {k: r[k] for k in ("equal", "source_matchers", "target_matchers")}
        for r in plain["inhibit_rules"]
    ]
    assert downgrades(plain_rules_of(cr), rendered_alerts()) == []
    kustomization = yaml.safe_load(
        (ALERTMANAGER_CONFIG_CR.parent / "kustomization.yaml").read_text()
    )
    assert ALERTMANAGER_CONFIG_CR.name in kustomization["resources"]


def test_the_alertmanager_config_metadata_validates_as_kubernetes_object_meta():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    [cr] = [d for d in yaml.safe_load_all(ALERTMANAGER_CONFIG_CR.read_text()) if d]
    # A CRD has no schema in kubernetes-validate: its metadata is checked as a core object's.
    probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": cr["metadata"], "data": {}}
    kubernetes_validate.validate(probe, "1.30.0", strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kustomize_puts_the_alertmanager_config_in_ringwatchs_namespace():
    out = subprocess.run(
        ["kubectl", "kustomize", str(ALERTMANAGER_CONFIG_CR.parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    # BaseLoader: kubectl writes `matchType: =` bare, which YAML 1.1 loaders take for a tag
    documents = [d for d in yaml.load_all(out.stdout, Loader=yaml.BaseLoader) if d]
    [cr] = [d for d in documents if d["kind"] == "AlertmanagerConfig"]
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    assert plain_rules_of(cr) == plain_rules_of(
        next(d for d in yaml.safe_load_all(ALERTMANAGER_CONFIG_CR.read_text()) if d)
    )
    # the operator's namespace matcher: the ring alerts carry ringwatch's namespace
    assert cr["metadata"]["namespace"] == deployment["metadata"]["namespace"]
