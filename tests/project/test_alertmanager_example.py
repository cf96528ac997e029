"""deploy/alertmanager: the routing example passes amtool, names only the mixin's alerts, and a
real Alertmanager inhibits as the example says."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.deploy import (
    ALERTMANAGER_EXAMPLE,
    CONTRACT_ALERTS,
    MEMBER_AND_RING_ALERTS,
    MIXIN_ALERTS,
)
from support.net import stop_process


def parse_matcher(matcher: str) -> tuple[str, str, str]:
    found = re.fullmatch(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*', matcher)
    assert found, matcher
    return found.group(1), found.group(2), found.group(3)


def alert_names(matchers: list[str]) -> set[str]:
    """Alert names a list of matchers selects by name; a regex must be a plain alternation."""
    names: set[str] = set()
    for name, op, value in map(parse_matcher, matchers):
        if name != "alertname":
            continue
        assert op in ("=", "=~"), f"negative alertname matchers hide typos: {op}{value}"
        for alternative in value.split("|") if op == "=~" else [value]:
            assert re.fullmatch(r"[A-Za-z]\w*", alternative), alternative
            names.add(alternative)
    return names


def routes(route: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield route
    for child in route.get("routes", []):
        yield from routes(child)


def mixin_alert_names() -> set[str]:
    groups = yaml.safe_load(MIXIN_ALERTS.read_text())["groups"]
    return {r["alert"] for g in groups for r in g["rules"] if "alert" in r}


@pytest.fixture(scope="module")
def alertmanager_config() -> dict[str, Any]:
    return yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text())


def test_alertmanager_example_passes_amtool() -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool not installed; the example is still parsed by the other tests")
    result = subprocess.run(
        [amtool, "check-config", str(ALERTMANAGER_EXAMPLE)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_example_names_only_existing_alerts(
    alertmanager_config: dict[str, Any],
) -> None:
    used: set[str] = set()
    for route in routes(alertmanager_config["route"]):
        used |= alert_names(route.get("matchers", []))
    for rule in alertmanager_config["inhibit_rules"]:
        used |= alert_names(rule["source_matchers"]) | alert_names(rule["target_matchers"])
    assert used, "the example names no alert"
    known = CONTRACT_ALERTS | MEMBER_AND_RING_ALERTS
    assert used <= known, used - known
    if MIXIN_ALERTS.exists():
        assert used <= mixin_alert_names(), used - mixin_alert_names()
    receivers = {r["name"] for r in alertmanager_config["receivers"]}
    assert {r["receiver"] for r in routes(alertmanager_config["route"])} <= receivers


def test_no_inhibit_rule_mutes_or_is_sourced_by_ringwatch_going_blind(
    alertmanager_config: dict[str, Any],
) -> None:
    for rule in alertmanager_config["inhibit_rules"]:
        named = alert_names(rule["source_matchers"]) | alert_names(rule["target_matchers"])
        assert not named & {"RingwatchScanFailing", "RingwatchDown"}, rule


@pytest.fixture(scope="module")
def alertmanager_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("Alertmanager is not installed")
    workdir = tmp_path_factory.mktemp("alertmanager")
    log = workdir / "alertmanager.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={ALERTMANAGER_EXAMPLE}",
                f"--storage.path={workdir}",
                "--web.listen-address=127.0.0.1:0",
                "--cluster.listen-address=",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        url = wait_for_listen_address(process, log, deadline=time.monotonic() + 30)
        yield url
    finally:
        stop_process(process)


def wait_for_listen_address(process: subprocess.Popen[bytes], log: Path, deadline: float) -> str:
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        found = re.search(r'msg="Listening on" address=(\S+)', log.read_text())
        if found:
            url = f"http://{found.group(1)}"
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return url
            except OSError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"Alertmanager did not become ready:\n{log.read_text()}")


def post_alerts(url: str, alerts: list[dict[str, str]]) -> None:
    body = json.dumps([{"labels": labels} for labels in alerts]).encode()
    request = urllib.request.Request(
        f"{url}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def wait_for_states(url: str, expected: dict[str, str], deadline: float) -> dict[str, str]:
    """Poll until every alert (keyed by its `id` label) has the expected state, or time runs out."""
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as response:
            alerts = json.load(response)
        states = {
            a["labels"]["id"]: a["status"]["state"]
            for a in alerts
            if a["labels"].get("id") in expected
        }
        if states == expected:
            break
        time.sleep(0.2)
    return states


def test_alertmanager_keeps_member_pages_while_ringwatch_cannot_scan_their_table(
    alertmanager_url: str,
) -> None:
    member = {
        "alertname": "CortexRingMemberHeartbeatStale",
        "ring": "collectors/ring",
        "severity": "critical",
    }
    post_alerts(
        alertmanager_url,
        [
            {"id": "scan-failing", "alertname": "RingwatchScanFailing", "table": "blind",
             "severity": "critical"},
            {"id": "blind-member", **member, "table": "blind", "member": "ingester-1"},
            {"id": "blind-rollout", "alertname": "CortexRingRolloutStalled", "table": "blind",
             "ring": "collectors/ring", "severity": "critical"},
        ],
    )  # fmt: skip
    expected = {"scan-failing": "active", "blind-member": "active", "blind-rollout": "active"}
    assert wait_for_states(alertmanager_url, expected, time.monotonic() + 20) == expected


def test_alertmanager_lets_a_ghost_alert_stand_for_the_same_members_stale_alert(
    alertmanager_url: str,
) -> None:
    same = {"table": "ghosts", "ring": "collectors/ring", "severity": "critical"}
    post_alerts(
        alertmanager_url,
        [
            {"id": "ghost", "alertname": "CortexRingMemberGhost", **same, "member": "ingester-9"},
            {"id": "ghost-stale", "alertname": "CortexRingMemberHeartbeatStale", **same,
             "member": "ingester-9"},
            {"id": "ghost-cas", "alertname": "CortexRingMemberCASStalled", **same,
             "member": "ingester-9"},
            {"id": "other-stale", "alertname": "CortexRingMemberHeartbeatStale", **same,
             "member": "ingester-2"},
            # a ghost of lower severity (a per-ring override) never mutes a page
            {"id": "warning-ghost", "alertname": "CortexRingMemberGhost", **same,
             "member": "ingester-3", "severity": "warning"},
            {"id": "paging-stale", "alertname": "CortexRingMemberHeartbeatStale", **same,
             "member": "ingester-3"},
        ],
    )  # fmt: skip
    expected = {
        "ghost": "active",
        "ghost-stale": "suppressed",
        "ghost-cas": "suppressed",
        "other-stale": "active",
        "warning-ghost": "active",
        "paging-stale": "active",
    }
    assert wait_for_states(alertmanager_url, expected, time.monotonic() + 20) == expected
