"""`ringwatch scan` as a person or a script runs it: the real command in a
subprocess, against the real Cortex dumps in a DynamoDB-compatible server."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from support.cortexdata import DUMPS, FIXTURES, capture_time, load_decoded, load_dump
from support.moto import MotoDynamo
from support.net import free_port

SPEC_MEMBER_FIELDS = {
    "member",
    "state",
    "zone",
    "addr",
    "heartbeat_timestamp",
    "heartbeat_age_seconds",
    "registered_timestamp",
    "tokens",
    "ownership",
    "cas_version",
    "stale",
}
HEALTHY_AT = load_dump("healthy")["_capture"]["captured_at_unix"]
SIGSTOP_AT = load_dump("sigstop-45s")["_capture"]["captured_at_unix"]
ROW = re.compile(
    r"^\s*(!?)\s+(\S+)\s+(\S+)\s+([A-Z]+)\s+(-?[\dhms.]+)\s+(-|[\dhms]+)"
    r"\s+([\dhms]+)\s+(\d+)\s+(\d+)\s+([\d.]+)(?:\s+(.*))?$"
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RINGWATCH_", "AWS_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    return env


def scan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ringwatch", "scan", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )


def scan_table(moto: MotoDynamo, table: str, *args: str) -> subprocess.CompletedProcess[str]:
    return scan(
        "--dynamodb.table",
        table,
        "--dynamodb.endpoint-url",
        moto.endpoint_url,
        "--dynamodb.max-attempts",
        "1",
        *args,
    )


def rows(text: str, ring: str) -> list[tuple[str, ...]]:
    """The member rows printed under `ring`, as (mark, member, zone, state, age, version,
    tokens, ownership, problem, heartbeat period, stale threshold)."""
    block = text.split(f"ring {ring}:", 1)[1].split("\n\n", 1)[0].splitlines()
    assert block[1].split() == [
        "MEMBER",
        "ZONE",
        "STATE",
        "HEARTBEAT",
        "AGE",
        "PERIOD",
        "STALE",
        "AFTER",
        "VERSION",
        "TOKENS",
        "OWNERSHIP",
        "%",
        "PROBLEM",
    ]
    found = []
    for line in block[2:]:
        match = ROW.match(line)
        assert match, line
        mark, member, zone, state, age, period, threshold, *rest = (g or "" for g in match.groups())
        found.append((mark, member, zone, state, age, *rest, period, threshold))
    return found


@pytest.fixture(scope="module")
def loaded(moto_dynamo: MotoDynamo) -> MotoDynamo:
    for dump in DUMPS:
        moto_dynamo.load_dump(f"scan-{dump}", dump)
    return moto_dynamo


def test_healthy_dump_prints_each_ring_oldest_heartbeat_first_and_exits_0(
    loaded: MotoDynamo,
) -> None:
    result = scan_table(loaded, "scan-healthy", "--at", str(HEALTHY_AT))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    ingesters = rows(out, "collectors/ring")
    assert [r[1] for r in ingesters] == ["ingester-1", "ingester-3", "ingester-2"]
    assert [r[4] for r in ingesters] == ["2.4s", "1.4s", "400ms"]  # oldest first
    assert all(r[0] == "" and r[8] == "" for r in ingesters)  # no row marked
    assert [(r[3], r[5], r[6]) for r in ingesters] == [("ACTIVE", "18", "128")] * 3
    assert "ring collectors/ring: 3 members (3 ACTIVE), 0 stale, 384 tokens" in out
    assert "ring collectors/store-gateway: 1 member (1 JOINING), 0 stale" in out
    for ring in ("collectors/compactor", "collectors/distributor", "collectors/store-gateway"):
        assert [r[7] for r in rows(out, ring)] == ["100.00"]
    assert out.rstrip().endswith("OK: 6 members in 4 rings, no problems (exit 0)")


def test_ownership_column_matches_cortex_ring_page_within_a_hundredth_of_a_point(
    loaded: MotoDynamo,
) -> None:
    page = (FIXTURES / "ring-page-healthy.html").read_text()
    cortex = dict(re.findall(r"<td>(ingester-\d+)</td>.*?<td>([\d.]+)%</td>", page, re.S))
    assert len(cortex) == 3
    text = scan_table(loaded, "scan-healthy", "--at", str(HEALTHY_AT)).stdout
    printed = {r[1]: float(r[7]) for r in rows(text, "collectors/ring")}
    document = json.loads(
        scan_table(loaded, "scan-healthy", "--at", str(HEALTHY_AT), "--output", "json").stdout
    )
    ring = next(r for r in document["tables"][0]["rings"] if r["ring"] == "collectors/ring")
    exact = {m["member"]: m["ownership"] * 100 for m in ring["members"]}
    for member, percent in cortex.items():
        assert abs(printed[member] - float(percent)) < 0.01, member
        assert abs(exact[member] - float(percent)) < 0.01, member


@pytest.mark.parametrize("dump", DUMPS)
def test_json_has_the_spec_shape_and_the_dump_values_as_of_capture_time(
    loaded: MotoDynamo, dump: str
) -> None:
    at = capture_time(dump)
    result = scan_table(loaded, f"scan-{dump}", "--at", str(at), "--output", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert {"scanned_at", "tables"} <= document.keys()
    assert document["scanned_at"] == pytest.approx(at)
    [table] = document["tables"]
    assert {"table", "ok", "error", "rings"} <= table.keys()
    assert (table["table"], table["ok"], table["error"]) == (f"scan-{dump}", True, None)
    expected = {(i["RingKey"], i["InstanceKey"]): i for i in load_decoded(dump)["items"]}
    seen = set()
    for ring in table["rings"]:
        assert {"ring", "members"} <= ring.keys()
        ages = [m["heartbeat_age_seconds"] for m in ring["members"]]
        assert ages == sorted(ages, reverse=True)
        assert sum(m["ownership"] for m in ring["members"]) == pytest.approx(1.0)
        for member in ring["members"]:
            assert SPEC_MEMBER_FIELDS <= member.keys()
            want = expected[(ring["ring"], member["member"])]
            instance = want["instance"]
            seen.add((ring["ring"], member["member"]))
            assert member["state"] == instance["state"]
            assert member["zone"] == instance["zone"]
            assert member["addr"] == instance["addr"]
            assert member["heartbeat_timestamp"] == instance["timestamp"]
            assert member["heartbeat_age_seconds"] == pytest.approx(
                at - instance["timestamp"], abs=0.001
            )
            assert member["registered_timestamp"] == instance["registered_timestamp"]
            assert member["tokens"] == instance["tokens_count"]
            assert member["cas_version"] == want["version"]
            assert member["stale"] is False
            assert 0.0 <= member["ownership"] <= 1.0
    assert seen == set(expected)


def test_frozen_ingester_is_marked_stale_listed_first_and_exits_1(loaded: MotoDynamo) -> None:
    result = scan_table(
        loaded, "scan-sigstop-45s", "--at", str(SIGSTOP_AT), "--ring.stale-after", "30s"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    ingesters = rows(result.stdout, "collectors/ring")
    assert ingesters[0][:2] == ("!", "ingester-2")
    assert ingesters[0][8] == "STALE: no heartbeat for 46.3s (threshold 30s)"
    # One scan learns no heartbeat period: every member is judged against the cap.
    assert {r[9:] for r in ingesters} == {("-", "30s")}
    assert [r[0] for r in ingesters[1:]] == ["", ""]
    assert "ring collectors/ring: 3 members (3 ACTIVE), 1 stale, 384 tokens" in result.stdout
    assert "PROBLEMS: 1 stale member, 0 stuck" in result.stdout

    document = json.loads(
        scan_table(
            loaded,
            "scan-sigstop-45s",
            "--at",
            str(SIGSTOP_AT),
            "--ring.stale-after",
            "30s",
            "-o",
            "json",
        ).stdout
    )
    stale = [
        (r["ring"], m["member"])
        for r in document["tables"][0]["rings"]
        for m in r["members"]
        if m["stale"]
    ]
    assert stale == [("collectors/ring", "ingester-2")]
    judged = {
        (m["heartbeat_period_seconds"], m["stale_threshold_seconds"])
        for r in document["tables"][0]["rings"]
        for m in r["members"]
    }
    assert judged == {(None, 30.0)}
    assert (
        document["stale_after_seconds"],
        document["stale_periods"],
        document["stale_floor_seconds"],
    ) == (30.0, 4, 20.0)


def test_the_same_dump_is_fine_at_the_default_one_minute_threshold(loaded: MotoDynamo) -> None:
    result = scan_table(loaded, "scan-sigstop-45s", "--at", str(SIGSTOP_AT))
    assert result.returncode == 0, result.stdout
    assert rows(result.stdout, "collectors/ring")[0][:2] == ("", "ingester-2")


def test_problems_only_lists_just_the_stale_member(loaded: MotoDynamo) -> None:
    args = ("--at", str(SIGSTOP_AT), "--ring.stale-after", "30s", "--problems-only")
    result = scan_table(loaded, "scan-sigstop-45s", *args)
    assert result.returncode == 1
    assert [r[1] for r in rows(result.stdout, "collectors/ring")] == ["ingester-2"]
    assert (
        "ring collectors/compactor: 1 member (1 ACTIVE), 0 stale, 512 tokens; no problems"
        in result.stdout
    )
    assert "extra-1" not in result.stdout
    document = json.loads(scan_table(loaded, "scan-sigstop-45s", *args, "-o", "json").stdout)
    listed = [m["member"] for r in document["tables"][0]["rings"] for m in r["members"]]
    assert listed == ["ingester-2"]


def test_store_gateway_joining_for_80s_is_stuck_only_past_a_30s_stuck_after(
    loaded: MotoDynamo,
) -> None:
    default = scan_table(loaded, "scan-healthy", "--at", str(HEALTHY_AT))
    assert default.returncode == 0  # registered ~80 s before capture, under 10m
    result = scan_table(
        loaded, "scan-healthy", "--at", str(HEALTHY_AT), "--ring.stuck-after", "30s"
    )
    assert result.returncode == 1, result.stdout
    [row] = rows(result.stdout, "collectors/store-gateway")
    assert row[:4] == ("!", "extra-1", "-", "JOINING")
    assert row[8] == "STUCK in JOINING for 1m20.4s"
    document = json.loads(
        scan_table(
            loaded,
            "scan-healthy",
            "--at",
            str(HEALTHY_AT),
            "--ring.stuck-after",
            "30s",
            "-o",
            "json",
        ).stdout
    )
    assert [(p["ring"], p["member"], p["kind"]) for p in document["problems"]] == [
        ("collectors/store-gateway", "extra-1", "stuck")
    ]


def test_an_undecodable_item_is_a_problem_and_the_rest_is_still_shown(
    moto_dynamo: MotoDynamo,
) -> None:
    items = load_dump("healthy")["Items"]
    bad = dict(
        items[2],
        InstanceKey={"S": "ingester-9"},
        Data={"B": base64.b64encode(b"\xff not snappy at all").decode()},
    )
    moto_dynamo.load("scan-bad-item", [*items, bad])
    result = scan_table(moto_dynamo, "scan-bad-item", "--at", str(HEALTHY_AT))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "item collectors/ring/ingester-9 SKIPPED, cannot decode (snappy)" in result.stdout
    assert [r[1] for r in rows(result.stdout, "collectors/ring")] == [
        "ingester-1",
        "ingester-3",
        "ingester-2",
    ]
    assert "1 undecodable item" in result.stdout


def test_a_missing_table_exits_2_and_says_so(loaded: MotoDynamo) -> None:
    result = scan_table(
        loaded, "scan-healthy", "--dynamodb.table", "no-such-table", "--at", str(HEALTHY_AT)
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "== table no-such-table: SCAN FAILED (error): ResourceNotFoundException" in result.stdout
    assert "ring collectors/ring: 3 members" in result.stdout  # the good table still shown


def test_a_refused_connection_exits_2() -> None:
    port = free_port()  # nothing listens there
    result = scan(
        "--dynamodb.table",
        "t",
        "--dynamodb.endpoint-url",
        f"http://127.0.0.1:{port}",
        "--dynamodb.max-attempts",
        "1",
        "-o",
        "json",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    [table] = json.loads(result.stdout)["tables"]
    assert (table["ok"], table["rings"]) == (False, [])
    assert "Could not connect" in table["error"]


def test_a_silent_endpoint_is_cut_by_the_serve_deadlines_and_exits_2() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        started = time.monotonic()
        result = scan(
            "--dynamodb.table",
            "t",
            "--dynamodb.endpoint-url",
            f"http://127.0.0.1:{silent.getsockname()[1]}",
            "--dynamodb.request-timeout",
            "300ms",
            "--scan.timeout",
            "1s",
            "-o",
            "json",
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stdout + result.stderr
    [table] = json.loads(result.stdout)["tables"]
    assert table["result"] == "timeout"
    assert elapsed < 20  # interpreter start-up included; the scan itself is cut at 1 s


@pytest.mark.parametrize(
    "args",
    [
        ("--ring.stale-after", "soon"),
        ("--no-such-flag",),
        ("--output", "yaml"),
        ("--at", "yesterday"),
    ],
)
def test_bad_usage_exits_2_with_one_line(args: tuple[str, ...]) -> None:
    result = scan("--dynamodb.table", "t", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
