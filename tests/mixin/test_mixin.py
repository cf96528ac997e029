"""The mixin's build, lint and `_config` overrides: rendered files, runbook, dashboards, PromQL."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import REPO

MIXIN = REPO / "mixin"
sys.path.insert(0, str(MIXIN))

import build  # noqa: E402

ALLOWED_PANELS = {"timeseries", "stat", "bargauge", "table", "text"}
CONTRACT_ALERTS = {
    "CortexRingMemberHeartbeatStale",
    "CortexRingMemberCASStalled",
    "CortexRingMemberGhost",
    "CortexRingRolloutStalled",
    "CortexRingUnhealthyMembers",
    "CortexIngesterCASFlatlined",
    "RingwatchScanFailing",
    "RingwatchDown",
    "RingwatchDynamoDBThrottled",
    "RingwatchDecodeErrors",
}
# Alerts the mixin adds to the contract's (clock skew is its own signal).
MIXIN_ALERTS = CONTRACT_ALERTS | {"CortexRingMemberClockSkewed"}
DASHBOARD_TITLES = {
    "ringwatch / Ring health",
    "ringwatch / Rollout progress",
    "ringwatch / Exporter",
}


@pytest.fixture(scope="module")
def default() -> dict:
    return build.render()


def alerts_of(rendered: dict) -> list[dict]:
    return [r for g in rendered["prometheus_alerts"]["groups"] for r in g["rules"]]


def records_of(rendered: dict) -> list[dict]:
    return [r for g in rendered["prometheus_rules"]["groups"] for r in g["rules"]]


def promtool_check(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["promtool", "check", "rules", *map(str, paths)], capture_output=True, text=True, timeout=60
    )


def write_rendered(rendered: dict, directory: Path) -> tuple[Path, Path]:
    alerts, rules = directory / "alerts.yaml", directory / "rules.yaml"
    alerts.write_text(build.to_yaml(rendered["prometheus_alerts"]))
    rules.write_text(build.to_yaml(rendered["prometheus_rules"]))
    return alerts, rules


def test_committed_files_are_what_the_jsonnet_renders():
    result = subprocess.run(
        [sys.executable, str(MIXIN / "build.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_check_names_files_that_differ_or_are_missing(default, tmp_path, monkeypatch):
    monkeypatch.setattr(build, "REPO_DIR", tmp_path)
    monkeypatch.setattr(build, "DASHBOARDS_DIR", tmp_path / "dashboards")
    committed = tmp_path / "prometheus_alerts.yaml"
    text = build.to_yaml(default["prometheus_alerts"])
    committed.write_text(text.replace("for: 1m", "for: 9m", 1))
    problems = build.check({committed: text, tmp_path / "prometheus_rules.yaml": "groups: []\n"})
    assert len(problems) == 2
    assert problems[0].startswith("prometheus_alerts.yaml: differs") and "for: 9m" in problems[0]
    assert problems[1] == "prometheus_rules.yaml: missing"
    committed.write_text(text)
    assert build.check({committed: text}) == []


def test_rendered_rules_pass_promtool_check_without_lint_findings():
    result = promtool_check(build.ALERTS_PATH, build.RULES_PATH)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "FAILED" not in result.stdout, result.stdout


def test_inhibit_rules_ship_beside_the_rules_and_in_the_example_alertmanager_config(default):
    rendered = default["alertmanager_inhibit_rules"]
    assert yaml.safe_load((MIXIN / "alertmanager_inhibit_rules.yaml").read_text()) == rendered
    example = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
    assert yaml.safe_load(example.read_text())["inhibit_rules"] == rendered["inhibit_rules"]
    pairs = {
        (r["source_matchers"][0], m)
        for r in rendered["inhibit_rules"]
        for m in r["target_matchers"]
    }
    assert not any("Ringwatch" in source for source, _ in pairs)
    assert (
        'alertname="CortexRingMemberGhost"',
        'alertname=~"CortexRingMemberHeartbeatStale|CortexRingMemberCASStalled"',
    ) in pairs
    assert ('alertname="CortexRingUnhealthyMembers"', 'severity=~"warning|info"') in pairs
    assert (
        'alertname="CortexRingMemberHeartbeatStale"',
        'alertname="CortexRingMemberCASStalled"',
    ) in pairs
    result = subprocess.run(
        ["amtool", "check-config", str(example)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rendered['inhibit_rules'])} inhibit rules" in result.stdout


def test_jsonnet_sources_are_formatted():
    sources = sorted(str(p) for p in MIXIN.rglob("*.libsonnet"))
    assert len(sources) >= 10
    result = subprocess.run(
        ["jsonnetfmt", "--test", *sources], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"run jsonnetfmt -i on the mixin: {result.stderr}"


def test_every_alert_exists_with_severity_summary_description_and_runbook(default):
    alerts = alerts_of(default)
    assert {a["alert"] for a in alerts} == MIXIN_ALERTS
    runbook = (MIXIN / "runbook.md").read_text()
    sections = {h.strip() for h in re.findall(r"^## (.+)$", runbook, re.M)}
    for a in alerts:
        assert a["labels"]["severity"] in {"critical", "warning", "info"}, a["alert"]
        ann = a["annotations"]
        assert ann["summary"] and "{{" not in ann["summary"], a["alert"]
        assert "{{" in ann["description"], a["alert"]
        assert ann["runbook_url"].endswith("#" + a["alert"].lower()), a["alert"]
        assert a["alert"] in sections, f"no runbook section for {a['alert']}"


def test_member_descriptions_name_table_ring_member_and_zone(default):
    for a in alerts_of(default):
        d = a["annotations"]["description"]
        if a["alert"].startswith("CortexRing"):
            assert "$labels.table" in d and "$labels.ring" in d, a["alert"]
        if a["alert"] in {
            "CortexRingMemberHeartbeatStale",
            "CortexRingMemberCASStalled",
            "CortexRingMemberGhost",
        }:
            assert "$labels.member " in d and "$labels.member_zone" in d, a["alert"]


def dashboards(rendered: dict) -> dict[str, dict]:
    return rendered["dashboards"]


def panel_queries(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboards_have_uid_title_variables_and_only_allowed_panels(default):
    boards = dashboards(default)
    assert {d["title"] for d in boards.values()} == DASHBOARD_TITLES
    uids = [d["uid"] for d in boards.values()]
    assert len(set(uids)) == 3 and all(re.fullmatch(r"[a-z0-9-]{1,40}", u) for u in uids)
    for name, d in boards.items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", name
        assert {"cluster", "namespace", "table", "ring"} <= variables.keys(), name
        types = {p["type"] for p in d["panels"]}
        assert types <= ALLOWED_PANELS, (name, types - ALLOWED_PANELS)
        for p in d["panels"]:
            if p["type"] != "text":
                assert p["datasource"]["uid"] == "${datasource}", (name, p["title"])
        assert any("$__rate_interval" in q for q in panel_queries(d)), name
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), name


def test_dashboard_files_keep_their_uid():
    for path in sorted((REPO / "dashboards").glob("*.json")):
        text = path.read_text()
        assert f'"uid": "{path.stem}"' in text, path.name


def test_every_panel_query_is_valid_promql(default, tmp_path):
    """All panel and variable queries, as recording rules, through `promtool check rules`."""
    substitutions = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
    rules = []
    for name, d in sorted(dashboards(default).items()):
        exprs = panel_queries(d) + [
            re.fullmatch(r"label_values\((.*), \w+\)", v["query"]["query"]).group(1)
            for v in d["templating"]["list"]
            if v["type"] == "query"
        ]
        for i, expr in enumerate(exprs):
            for var, value in substitutions.items():
                expr = expr.replace(var, value)
            expr = re.sub(r"\$\w+", ".*", expr)
            rules.append(
                {"record": f"dashboard:{Path(name).stem.replace('-', '_')}:q{i}", "expr": expr}
            )
    assert len(rules) > 40
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}))
    result = promtool_check(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_panels_cover_ring_freshness_cas_ownership_and_the_exporter(default):
    queries = {Path(n).stem: "\n".join(panel_queries(d)) for n, d in dashboards(default).items()}
    health = queries["ringwatch-ring-health"]
    for needle in (
        "ring:ringwatch_ring_members:max",
        "zone:ringwatch_member_stale:sum",
        "sort_desc(member:ringwatch_member_heartbeat_age_seconds:max",
        "ringwatch_member_cas_writes_total",
        "member:ringwatch_member_cas_last_change_timestamp_seconds:age_min",
        "member:ringwatch_member_token_ownership_ratio:max",
        "zone:ringwatch_member_token_ownership_ratio:sum",
    ):
        assert needle in health, needle
    rollout = queries["ringwatch-rollout-progress"]
    for needle in (
        "kube_statefulset_status_replicas_updated",
        'state=~"JOINING|LEAVING|PENDING"',
        "cortex_kv_request_duration_seconds_count{",
        'operation="CAS"',
        "status_code",
        "cortex_dynamodb_kv_cas_attempt_total",
    ):
        assert needle in rollout, needle
    exporter = queries["ringwatch-exporter"]
    for needle in (
        "ringwatch_scan_duration_seconds_bucket",
        "ringwatch_scans_total",
        "ringwatch_request_duration_seconds_bucket",
        'result="throttled"',
        "ringwatch_consumed_capacity_units_total",
        "ringwatch_decode_errors_total",
        "ringwatch_last_successful_scan_timestamp_seconds",
    ):
        assert needle in exporter, needle


def test_config_overrides_reach_every_output(tmp_path):
    overrides = {
        "ringwatchSelector": 'job="rw-e2e"',
        "ingesterSelector": 'job="e2e/ingester"',
        "kubeStateMetricsSelector": 'job="ksm-e2e"',
        "ringDefaults": {
            "heartbeatStaleFor": "2s",
            "casStalledAfter": "7s",
            "ghostAfter": "1m30s",
            "heartbeatStaleSeverity": "page",
            "replicationFactor": 5,
        },
        "ringOverrides": {"collectors/distributor": {"heartbeatStaleFor": "1m"}},
        "gapTolerance": "20s",
        "versionMovingWindow": "40s",
        "scanFailingAfter": "20s",
        "scanFailingFor": "4s",
        "ingesterCASWindow": "15s",
        "runbookURLBase": "https://runbooks.example/ringwatch",
        "dashboardRefresh": "5s",
        "dashboardDatasource": "e2e-prom",
    }
    out = build.render(overrides)
    alerts, records = alerts_of(out), records_of(out)
    stale = [a for a in alerts if a["alert"] == "CortexRingMemberHeartbeatStale"]
    # the default rule, excluding the one ring whose override touches this alert, and its own
    assert len(stale) == 2
    by_ring = {a["labels"].get("ring"): a for a in stale}
    assert by_ring[None]["for"] == "2s"
    assert 'ring!~"collectors/distributor"' in by_ring[None]["expr"]
    assert "[20s]" in by_ring[None]["expr"]
    assert all(a["labels"]["severity"] == "page" for a in stale)
    assert by_ring["collectors/distributor"]["for"] == "1m"
    tolerated = [
        r["expr"]
        for r in records
        if r["record"] == "ring:ringwatch_failure_domains_tolerated:count"
    ]
    assert tolerated and all(", 5)" in e for e in tolerated)
    skew = next(a for a in alerts if a["alert"] == "CortexRingMemberClockSkewed")
    assert "[40s]" in skew["expr"]
    cas = next(a for a in alerts if a["alert"] == "CortexRingMemberCASStalled")
    assert cas["expr"].rstrip().endswith("> 7")
    ghost = next(a for a in alerts if a["alert"] == "CortexRingMemberGhost")
    assert "> 90\n" in ghost["expr"]
    scan = next(a for a in alerts if a["alert"] == "RingwatchScanFailing")
    assert "> 20" in scan["expr"] and scan["for"] == "4s"
    assert 'job="rw-e2e"' in scan["expr"]
    ingester = next(a for a in alerts if a["alert"] == "CortexIngesterCASFlatlined")
    assert "[15s]" in ingester["expr"] and 'job="e2e/ingester"' in ingester["expr"]
    assert all(
        a["annotations"]["runbook_url"].startswith("https://runbooks.example/ringwatch#")
        for a in alerts
    )
    raw = "\n".join(r["expr"] for r in records if "ringwatch_" in r["expr"])
    assert 'job="rw-e2e"' in raw and 'job="ringwatch"' not in raw
    assert 'job="ksm-e2e"' in "\n".join(r["expr"] for r in records)
    for d in out["dashboards"].values():
        assert d["refresh"] == "5s"
        assert d["templating"]["list"][0]["current"]["value"] == "e2e-prom"
        assert 'job="ringwatch"' not in yaml.safe_dump(d)
    result = promtool_check(*write_rendered(out, tmp_path))
    assert result.returncode == 0 and "FAILED" not in result.stdout, result.stdout + result.stderr


def test_a_state_can_be_switched_off_and_rollout_rings_dropped():
    out = build.render(
        {
            "ringDefaults": {"leavingStuckFor": None},
            "ringOverrides": {"collectors/store-gateway": None},
            "rolloutStatefulSets": {
                "collectors/ring": None,
                "collectors/store-gateway": None,
                "collectors/compactor": None,
            },
        }
    )
    rollout = [a for a in alerts_of(out) if a["alert"] == "CortexRingRolloutStalled"]
    assert sorted(a["labels"]["state"] for a in rollout) == ["JOINING", "PENDING"]
    assert all("ring!~" not in a["expr"] for a in alerts_of(out))
    assert "statefulset_ring:kube_statefulset_update_in_progress:group" not in {
        r["record"] for r in records_of(out)
    }


def _seconds_query(expr: str) -> bool:
    """A query whose values are seconds: an age, a duration quantile, time() minus a timestamp."""
    return bool(re.search(r"time\(\) -|histogram_quantile\(|_age_seconds|_seconds:age_", expr))


def _unit_of(panel: dict, ref: str) -> str:
    for override in panel["fieldConfig"]["overrides"]:
        if override["matcher"] == {"id": "byFrameRefID", "options": ref}:
            (prop,) = [p for p in override["properties"] if p["id"] == "unit"]
            return prop["value"]
    return panel["fieldConfig"]["defaults"]["unit"]


def test_every_panel_has_a_unit_and_seconds_panels_say_s(default):
    checked = 0
    for name, d in dashboards(default).items():
        for p in d["panels"]:
            if p["type"] == "text":
                continue
            assert p["fieldConfig"]["defaults"].get("unit"), (name, p["title"])
            for t in p["targets"]:
                unit = _unit_of(p, t["refId"])
                if _seconds_query(t["expr"]):
                    assert unit == "s", (name, p["title"], t["refId"], unit)
                    checked += 1
                else:
                    assert unit != "s", (name, p["title"], t["refId"])
    assert checked >= 10


def test_every_query_has_an_explicit_legend_and_timeseries_show_theirs(default):
    for name, d in dashboards(default).items():
        for p in d["panels"]:
            for t in p.get("targets", []):
                if t.get("format") == "table":
                    continue  # a table's columns are its labels
                assert t["legendFormat"] and t["legendFormat"] != "__auto", (name, p["title"])
            if p["type"] == "timeseries":
                legend = p["options"]["legend"]
                assert legend["showLegend"] is True and legend["displayMode"], (name, p["title"])


def test_every_alert_is_linked_from_a_panel_to_its_runbook_entry(default):
    runbook = (MIXIN / "runbook.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", runbook, re.M)
    }
    base = alerts_of(default)[0]["annotations"]["runbook_url"].split("#")[0]
    linked = set()
    for name, d in dashboards(default).items():
        for p in d["panels"]:
            for link in p.get("links", []):
                url_base, _, anchor = link["url"].partition("#")
                assert url_base == base and anchor in anchors, (name, p["title"], link["url"])
                assert link["title"].lower().endswith(anchor)
                linked.add(anchor)
    assert {a["alert"].lower() for a in alerts_of(default)} <= linked


def test_ring_health_draws_firing_alerts_of_the_selected_rings_as_annotations(default):
    health = dashboards(default)["ringwatch-ring-health.json"]
    annotations = health["annotations"]["list"]
    assert any(a.get("builtIn") for a in annotations)
    alerts = [a for a in annotations if a.get("expr", "").startswith("ALERTS{")]
    assert alerts and all(a["enable"] and a["datasource"]["uid"] == "${datasource}" for a in alerts)
    exprs = " ".join(a["expr"] for a in alerts)
    for needle in (
        'alertstate="firing"',
        'table=~"$table"',
        'alertname=~"CortexRing.*"',
        'alertname=~"Ringwatch.*"',
    ):
        assert needle in exprs, needle


def test_namespace_variable_and_joins_use_cortexs_namespace_label(tmp_path):
    out = build.render({"cortexNamespaceLabel": "cortex_ns"})
    rollout = out["dashboards"]["ringwatch-rollout-progress.json"]
    variables = {v["name"]: v for v in rollout["templating"]["list"]}
    assert variables["namespace"]["query"]["query"].endswith(", cortex_ns)")
    queries = "\n".join(panel_queries(rollout))
    assert 'cortex_ns=~"$namespace"' in queries  # ringwatch's series
    assert 'namespace=~"$namespace"' in queries.replace('cortex_ns=~"$namespace"', "")  # KSM's
    stalled = [
        a["expr"]
        for a in alerts_of(out)
        if a["alert"] == "CortexRingRolloutStalled" and "state" not in a["labels"]
    ]
    assert stalled and all("on (cluster, cortex_ns, ring)" in e for e in stalled)


def test_jsonnetfile_lets_jsonnet_bundler_vendor_the_mixin():
    jsonnetfile = json.loads((MIXIN / "jsonnetfile.json").read_text())
    assert jsonnetfile["version"] == 1
    assert jsonnetfile["dependencies"] == []  # plain jsonnet: nothing to vendor alongside
    imports = set()
    for path in MIXIN.rglob("*.libsonnet"):
        for target in re.findall(r"import '([^']+)'", path.read_text()):
            assert (path.parent / target).resolve().is_relative_to(MIXIN), (path, target)
            imports.add(target)
    assert imports


def test_the_rules_read_the_stale_threshold_ringwatch_publishes_and_derive_none(default):
    stale = [
        a["expr"] for a in alerts_of(default) if a["alert"] == "CortexRingMemberHeartbeatStale"
    ]
    assert stale and all("ringwatch_member_heartbeat_stale_threshold_seconds{" in e for e in stale)
    record = "member:ringwatch_member_heartbeat_stale_threshold_seconds:max"
    [threshold] = [r["expr"] for r in records_of(default) if r["record"] == record]
    assert "ringwatch_member_heartbeat_stale_threshold_seconds{" in threshold
    # No second formula: no rule but the period's own record reads the period.
    readers = [
        r.get("alert") or r["record"]
        for r in (*alerts_of(default), *records_of(default))
        if "heartbeat_period_seconds" in r["expr"]
    ]
    assert readers == ["member:ringwatch_member_heartbeat_period_seconds:max"]
    config = (REPO / "mixin" / "config.libsonnet").read_text()
    assert "heartbeatStalePeriods" not in config and "heartbeatStaleCap" not in config


def test_a_per_ring_override_copies_only_the_rules_it_changes(default):
    # The store-gateways' JOINING limit is the one shipped override: one extra rule, not a group.
    alerts = alerts_of(default)
    assert len(alerts) == len({a["alert"] for a in alerts}) + 4  # 4 more rollout rules
    variants = [a for a in alerts if a.get("labels", {}).get("ring") == "collectors/store-gateway"]
    assert [(a["alert"], a["labels"]["state"]) for a in variants] == [
        ("CortexRingRolloutStalled", "JOINING")
    ]
    assert all(
        "ring!~" not in a["expr"] for a in alerts if a["alert"] != "CortexRingRolloutStalled"
    )


def test_a_per_ring_override_of_an_unknown_knob_is_refused():
    knob = "collectors/ring.heartbeatStaleCap"
    with pytest.raises(RuntimeError, match=re.escape(f"not a per-ring knob: {knob}")):
        build.render({"ringOverrides": {"collectors/ring": {"heartbeatStaleCap": "3m"}}})


def test_recorded_series_are_named_level_metric_operations_and_listed_in_the_readmes(default):
    records = {r["record"] for r in records_of(default)}
    for name in records:
        level, metric, operations = name.split(":")
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", level), name
        # the metric keeps the name of what it is computed from (ringwatch's or
        # kube-state-metrics'), the operations say what was done to it
        assert re.fullmatch(r"(ringwatch|kube)_[a-z_]+", metric), name
        assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", operations), name
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Alerts, rules and dashboards", 1)[1].split("\n## ", 1)[0]
    mixin_readme = (MIXIN / "README.md").read_text()
    for name in records:
        assert f"`{name}`" in section, name
        assert f"`{name}`" in mixin_readme, name
