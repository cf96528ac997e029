"""The stale alert and ringwatch's own /ring.json call the same members stale on the same data:
one snapshot of the real builder, its /metrics fed to the rendered rules under promtool, its
/ring.json rendered beside."""

from __future__ import annotations

import re
import subprocess

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.alertsim import fmt_labels, replica_labels, rule_files
from support.exposition import samples
from support.heartbeats import TABLE, BeatingMember, every, scan_members

from ringwatch.config import load_config
from ringwatch.render.exposition import Renderer
from ringwatch.render.ringjson import snapshot_json
from ringwatch.snapshot.builder import SnapshotBuilder

T0 = 1_700_000_000.3
AT = T0 + 600
STEP = 15
HOLD = 120  # the scan's series are served this long: every `for:` of the stale alert is over


def stale_by_the_rules(exposition: str, tmp_path) -> set[str]:
    """Members the stale alert's expression and the stale record return at HOLD seconds, with the
    exposition served unchanged all along by one ringwatch replica."""
    steps = HOLD // STEP
    series = [
        {
            "series": "ringwatch_up" + fmt_labels({**replica_labels(0), "table": TABLE}),
            "values": f"1x{steps}",
        }
    ]
    for (name, labels), value in samples(exposition).items():
        if name.startswith("ringwatch_member_"):
            series.append(
                {
                    "series": name + fmt_labels({**replica_labels(0), **dict(labels)}),
                    "values": f"{value!r}x{steps}",
                }
            )
    alerts = yaml.safe_load(rule_files()[1].read_text())
    stale_expr = " or ".join(
        f"({r['expr']})"
        for g in alerts["groups"]
        for r in g["rules"]
        if r.get("alert") == "CortexRingMemberHeartbeatStale"
    )
    found: dict[str, set[str]] = {}
    for what, expr in (
        ("alert", stale_expr),
        ("record", "member:ringwatch_member_stale:bool == 1"),
    ):
        # promtool states what it got when a test fails: expect nothing, read the members.
        doc = {
            "rule_files": [str(p) for p in rule_files()],
            "evaluation_interval": f"{STEP}s",
            "tests": [
                {
                    "interval": f"{STEP}s",
                    "input_series": series,
                    "promql_expr_test": [
                        {
                            "expr": f"count by (member) ({expr})",
                            "eval_time": f"{HOLD}s",
                            "exp_samples": [],
                        }
                    ],
                }
            ],
        }
        path = tmp_path / f"{what}.yaml"
        path.write_text(yaml.safe_dump(doc))
        out = subprocess.run(
            ["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=120
        )
        got = out.stdout + out.stderr
        found[what] = set(re.findall(r'\{member="([^"]+)"\}', got))
        assert out.returncode == 0 or "got:" in got, got
    assert found["alert"] == found["record"]
    return found["alert"]


def judged(members: list[BeatingMember]) -> tuple[str, set[str]]:
    config = load_config(
        ["--dynamodb.table", TABLE, "--dynamodb.region", "r"], environ={}, scan_flags=True
    )
    builder = SnapshotBuilder(
        stale_after=config.stale_after,
        stale_periods=config.stale_periods,
        stale_floor=config.stale_floor,
    )
    snapshot = scan_members(builder, members, [*every(5, T0 + 1, AT - 1), AT])[-1]
    ring_json = snapshot_json(snapshot)
    stale = {
        m["member"]
        for t in ring_json["tables"]
        for r in t["rings"]
        for m in r["members"]
        if m["stale"]
    }
    return Renderer().render(snapshot.tables).decode(), stale


def test_alert_and_ring_json_call_the_same_members_stale(tmp_path):
    members = [
        BeatingMember("ingester-1", 5, T0),  # healthy
        BeatingMember("ingester-2", 5, T0, frozen_at=AT - 30),  # over 4 x 5 s
        BeatingMember("ingester-3", 5, T0, frozen_at=AT - 15),  # under 20 s
        BeatingMember("slow-1", 60, T0 + 0.5),  # up to 60 s old, never stale (120 s)
        BeatingMember("ghost", 5, T0, frozen_at=T0 + 10),  # period never learned: the cap
        BeatingMember("joiner", 5, AT - 40, registered=int(AT - 40), frozen_at=AT - 38),
        BeatingMember("ahead", 5, T0, clock_offset=-300),  # a clock 5 minutes behind
    ]
    exposition, stale = judged(members)
    assert stale == {"ingester-2", "ghost", "ahead"}
    assert stale_by_the_rules(exposition, tmp_path) == stale


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from([1, 5, 15, 60]), st.integers(0, 400)), min_size=1, max_size=6
    )
)
def test_on_any_ring_the_alert_and_ring_json_agree(tmp_path, beats):
    members = [
        BeatingMember(f"m-{i}", period, T0 + i * 0.1, frozen_at=AT - frozen_ago)
        for i, (period, frozen_ago) in enumerate(beats)
    ]
    exposition, stale = judged(members)
    assert stale_by_the_rules(exposition, tmp_path) == stale
