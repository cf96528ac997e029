"""`ringwatch scan` (text and JSON), `/ring.json`, `/ring` and `/metrics` call the same
members stale: one snapshot, judged against learned periods, rendered every way."""

from __future__ import annotations

import io
import re

from support.exposition import series
from support.heartbeats import RING, TABLE, BeatingMember, every, scan_members

from ringwatch.config import load_config
from ringwatch.render.exposition import Renderer
from ringwatch.render.report import exit_status, json_document, write_text
from ringwatch.render.ringjson import snapshot_json
from ringwatch.render.ringpage import render_page
from ringwatch.snapshot.builder import SnapshotBuilder
from ringwatch.snapshot.problems import find_problems

T0 = 1_700_000_000.3
AT = T0 + 600


def test_scan_ring_json_ring_page_and_metrics_agree_on_who_is_stale() -> None:
    members = [
        BeatingMember("ingester-1", 5, T0),  # healthy
        BeatingMember("ingester-2", 5, T0, frozen_at=AT - 30),  # 30 s old: over 4 x 5 s
        BeatingMember("slow-1", 60, T0 + 0.5),  # up to 60 s old, never stale (120 s)
        BeatingMember("ghost", 5, T0, frozen_at=T0 + 2),  # one beat, no step: the cap
        BeatingMember("joiner", 5, AT - 40, registered=int(AT - 40), frozen_at=AT - 38),
    ]
    config = load_config(["--dynamodb.table", TABLE, "--dynamodb.region", "r"], environ={},
                         scan_flags=True)
    builder = SnapshotBuilder(stale_after=config.stale_after,
                              stale_periods=config.stale_periods, stale_floor=config.stale_floor)
    snapshot = scan_members(builder, members, [*every(5, T0 + 1, AT - 1), AT])[-1]
    [table] = snapshot.tables
    [ring] = table.rings
    judged = {v.member.name: v for v in ring.members}
    assert judged["ingester-2"].heartbeat_period == 5 and judged["slow-1"].heartbeat_period == 60
    assert judged["ghost"].heartbeat_period is None
    expected = {"ingester-2", "ghost"}  # joiner: 38 s old, period unknown, under the cap
    assert {name for name, v in judged.items() if v.stale} == expected

    problems = find_problems(snapshot, AT, config.stuck_after)
    assert {p.member for p in problems if p.kind == "stale"} == expected

    text = io.StringIO()
    write_text(snapshot, config, AT, problems, exit_status(snapshot, problems), text)
    marked = {m.group(1) for m in re.finditer(r"^\s+!\s+(\S+).*STALE", text.getvalue(), re.M)}
    assert marked == expected

    scan_json = json_document(snapshot, config, AT, problems, exit_status(snapshot, problems))
    ring_json = snapshot_json(snapshot)
    for document in (scan_json, ring_json):
        [json_ring] = document["tables"][0]["rings"]
        assert {m["member"] for m in json_ring["members"] if m["stale"]} == expected
        thresholds = {m["member"]: m["stale_threshold_seconds"] for m in json_ring["members"]}
        assert thresholds == {"ingester-1": 20.0, "ingester-2": 20.0, "slow-1": 120.0,
                              "ghost": 60.0, "joiner": 60.0}

    page = render_page(snapshot, frozenset({TABLE}), AT)
    rows = re.findall(r'<tr class="(stale|fresh)" data-member="([^"]+)"', page)
    assert {member for kind, member in rows if kind == "stale"} == expected
    assert ('<td class="period num" data-period="5" data-threshold="20.0">5s / 20s</td>'
            in page)

    exposition = Renderer().render(snapshot.tables).decode()
    stale_members = series(exposition, "ringwatch_ring_stale_members")
    assert stale_members == {frozenset({"table": TABLE, "ring": RING}.items()): len(expected)}
    periods = {dict(k)["member"]: v for k, v in
               series(exposition, "ringwatch_member_heartbeat_period_seconds").items()}
    assert periods == {"ingester-1": 5, "ingester-2": 5, "slow-1": 60}  # absent while unknown
    # What an alert compares: the published age against the published threshold.
    ages = {dict(k)["member"]: v for k, v in
            series(exposition, "ringwatch_member_heartbeat_age_seconds").items()}
    thresholds = {dict(k)["member"]: v for k, v in
                  series(exposition, "ringwatch_member_heartbeat_stale_threshold_seconds").items()}
    assert thresholds == {m: v.stale_threshold for m, v in judged.items()}
    assert {m for m, age in ages.items() if age > thresholds[m]} == expected


def test_an_age_a_fraction_of_a_millisecond_past_the_threshold_is_judged_as_written() -> None:
    # /metrics and /ring.json write ages to the millisecond: a member judged stale must be
    # written older than its threshold, and one judged fresh not.
    builder = SnapshotBuilder(stale_after=60.0)
    member = BeatingMember("ingester-1", 5, T0, frozen_at=T0 + 50)
    scans = [*every(5, T0 + 1, T0 + 50), 1_700_000_070.0003, 1_700_000_070.0006]
    snapshots = scan_members(builder, [member], scans)
    for snapshot in snapshots[-2:]:
        [view] = snapshot.tables[0].members
        assert view.stale_threshold == 20.0
        exposition = Renderer().render(snapshot.tables).decode()
        [age] = series(exposition, "ringwatch_member_heartbeat_age_seconds").values()
        [json_member] = snapshot_json(snapshot)["tables"][0]["rings"][0]["members"]
        print(f"age {view.heartbeat_age!r} written {age!r}, stale {view.stale}")
        assert view.stale == (age > view.stale_threshold)
        assert view.stale == (json_member["heartbeat_age_seconds"] > view.stale_threshold)
