"""The exporter against real Cortex dumps in a real DynamoDB-compatible server."""

from __future__ import annotations

import asyncio
import gzip
import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from support.cortexdata import DUMPS, FIXTURES, capture_time, load_decoded, load_dump
from support.exposition import samples, series
from support.harness import fetch, running_exporter
from support.heartbeats import table_read
from support.moto import MotoDynamo
from support.oracle import decode_item

import ringwatch
from ringwatch.cortex.ownership import token_ownership
from ringwatch.cortex.proto import KNOWN_STATES
from ringwatch.cortex.tokens import Tokens
from ringwatch.render.exposition import Renderer
from ringwatch.serve.selfmetrics import SelfMetrics
from ringwatch.snapshot.builder import SnapshotBuilder

REGION = ["--dynamodb.region", "us-east-1"]


def _argv(moto: MotoDynamo, table: str, *extra: str) -> list[str]:
    return [
        "--dynamodb.table",
        table,
        "--dynamodb.endpoint-url",
        moto.endpoint_url,
        *REGION,
        *extra,
    ]


@pytest.mark.parametrize("dump", DUMPS)
def test_decoded_members_equal_the_hand_decoded_copy(dump: str) -> None:
    items = load_dump(dump)["Items"]
    expected = load_decoded(dump)["items"]
    assert len(items) == len(expected)
    for item, want in zip(items, expected, strict=True):
        member = decode_item(item)
        instance = want["instance"]
        assert (member.ring, member.name, member.version, member.ttl) == (
            want["RingKey"],
            want["InstanceKey"],
            want["version"],
            want["ttl"],
        )
        assert member.item_bytes == want["data_compressed_len"]
        assert member.addr == instance["addr"]
        assert member.heartbeat_timestamp == instance["timestamp"]
        assert (member.state, member.state_num) == (instance["state"], instance["state_num"])
        assert member.zone == instance["zone"]
        assert member.registered_timestamp == instance["registered_timestamp"]
        assert list(member.tokens) == instance["tokens"]


def test_ownership_matches_cortex_ring_page_within_a_hundredth_of_a_point() -> None:
    members = [decode_item(i) for i in load_dump("healthy")["Items"]]
    ring = {m.name: m.tokens for m in members if m.ring == "collectors/ring"}
    ours = token_ownership(ring)
    page = (FIXTURES / "ring-page-healthy.html").read_text()
    cortex = dict(re.findall(r"<td>(ingester-\d+)</td>.*?<td>([\d.]+)%</td>", page, re.S))
    assert set(cortex) == set(ring)
    for member, percent in cortex.items():
        assert abs(ours[member] * 100 - float(percent)) < 0.01, member
    assert sum(ours.values()) == pytest.approx(1.0)


def test_single_token_ring_gives_its_owner_everything_and_no_tokens_gives_zero() -> None:
    assert token_ownership({"a": (42,), "b": ()}) == {"a": 1.0, "b": 0.0}


async def _scrape(moto: MotoDynamo, table: str, at: float, *extra: str) -> str:
    async with running_exporter(_argv(moto, table, *extra), clock=lambda: at) as (exp, url):
        await exp.scan_once()
        status, body, headers = await fetch(url + "/metrics")
        assert status == 200
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return body.decode()


def _rendered_dump(dump: str, table: str = "t") -> tuple[dict, float, list[dict]]:
    """The dump scanned once at its capture time and rendered: (samples, capture time,
    the dump's hand-decoded items)."""
    at = capture_time(dump)
    snapshot = SnapshotBuilder(stale_after=60.0).build(
        [table_read(load_dump(dump)["Items"], at, table)], None, at
    )
    return (
        samples(b"".join(Renderer().render_parts(snapshot.tables)).decode()),
        at,
        load_decoded(dump)["items"],
    )


def _key(name: str, **labels: str) -> tuple[str, frozenset]:
    return name, frozenset(labels.items())


@pytest.mark.parametrize("dump", ["healthy", "sigstop-45s", "with-ttl"])
def test_member_series_carry_each_member_s_decoded_values(dump: str) -> None:
    got, at, decoded = _rendered_dump(dump)
    for item in decoded:
        inst = item["instance"]
        member = {"table": "t", "ring": item["RingKey"], "member": item["InstanceKey"]}
        assert (
            got[_key("ringwatch_member_heartbeat_timestamp_seconds", **member)] == inst["timestamp"]
        )
        assert got[_key("ringwatch_member_heartbeat_age_seconds", **member)] == pytest.approx(
            at - inst["timestamp"], abs=0.001
        )
        assert (
            got[_key("ringwatch_member_registered_timestamp_seconds", **member)]
            == inst["registered_timestamp"]
        )
        for state in KNOWN_STATES:
            assert got[_key("ringwatch_member_state", **member, state=state)] == (
                state == inst["state"]
            )
        assert (
            got[
                _key("ringwatch_member_info", **member, addr=inst["addr"], member_zone=inst["zone"])
            ]
            == 1
        )
        assert got[_key("ringwatch_member_tokens", **member)] == inst["tokens_count"]
        assert got[_key("ringwatch_member_cas_writes_total", **member)] == item["version"]
        assert got[_key("ringwatch_member_cas_last_change_timestamp_seconds", **member)] == at
        assert got[_key("ringwatch_member_item_bytes", **member)] == item["data_compressed_len"]


@pytest.mark.parametrize("dump", ["healthy", "with-ttl"])
def test_member_ttl_series_is_there_only_for_items_with_a_ttl(dump: str) -> None:
    got, _, decoded = _rendered_dump(dump)
    for item in decoded:
        key = _key(
            "ringwatch_member_ttl_timestamp_seconds",
            table="t",
            ring=item["RingKey"],
            member=item["InstanceKey"],
        )
        assert got.get(key) == item["ttl"]


def test_member_ownership_is_its_share_of_its_own_ring() -> None:
    got, _, decoded = _rendered_dump("healthy")
    rings: dict[str, dict[str, tuple[int, ...]]] = {}
    for item in decoded:
        rings.setdefault(item["RingKey"], {})[item["InstanceKey"]] = tuple(
            item["instance"]["tokens"]
        )
    for ring, tokens in rings.items():
        for member, share in token_ownership(tokens).items():
            assert got[
                _key("ringwatch_member_token_ownership_ratio", table="t", ring=ring, member=member)
            ] == pytest.approx(share, abs=1e-12)


@pytest.mark.parametrize("dump", ["healthy", "sigstop-45s"])
def test_ring_series_sum_up_their_members(dump: str) -> None:
    got, at, decoded = _rendered_dump(dump)
    for ring in {i["RingKey"] for i in decoded}:
        members = [i["instance"] for i in decoded if i["RingKey"] == ring]
        for state in KNOWN_STATES:
            assert got[_key("ringwatch_ring_members", table="t", ring=ring, state=state)] == sum(
                1 for m in members if m["state"] == state
            )
        assert got[_key("ringwatch_ring_stale_members", table="t", ring=ring)] == sum(
            1 for m in members if at - m["timestamp"] > 60
        )
        assert got[
            _key("ringwatch_ring_oldest_heartbeat_timestamp_seconds", table="t", ring=ring)
        ] == min(m["timestamp"] for m in members)
        assert got[_key("ringwatch_ring_tokens", table="t", ring=ring)] == sum(
            m["tokens_count"] for m in members
        )


def test_one_successful_scan_is_counted_in_the_self_metrics(moto_dynamo: MotoDynamo) -> None:
    table = "self-metrics-one-scan"
    at = moto_dynamo.load_dump(table, "healthy")["_capture"]["captured_at_unix"]

    async def run() -> str:
        async with running_exporter(_argv(moto_dynamo, table), clock=lambda: at) as (loop, _):
            await loop.scan_once()
            return loop.self_metrics().decode()

    got = samples(asyncio.run(run()))
    assert got[_key("ringwatch_up", table=table)] == 1
    assert got[_key("ringwatch_last_successful_scan_timestamp_seconds", table=table)] == at
    assert got[_key("ringwatch_scans_total", table=table, result="success")] == 1
    assert (
        got[_key("ringwatch_requests_total", table=table, operation="Scan", result="success")] == 1
    )
    assert got[_key("ringwatch_scan_duration_seconds_count", table=table)] == 1
    assert got[_key("ringwatch_request_duration_seconds_count", table=table, operation="Scan")] == 1
    assert _key("ringwatch_consumed_capacity_units_total", table=table) in got
    for reason in ("snappy", "protobuf", "attribute"):
        assert got[_key("ringwatch_decode_errors_total", table=table, reason=reason)] == 0


def test_build_info_names_version_revision_and_protobuf_backend() -> None:
    text = SelfMetrics(["t"], ["Scan"]).render().decode()
    ((labels, value),) = series(text, "ringwatch_build_info").items()
    assert value == 1
    assert dict(labels)["protobuf_backend"] == "upb"
    assert dict(labels)["version"] == ringwatch.__version__
    assert dict(labels)["revision"] == ringwatch.revision() != ""


def test_frozen_ingester_is_stale_in_the_sigstop_dump_at_a_30s_threshold(
    moto_dynamo: MotoDynamo,
) -> None:
    table = "stale-sigstop"
    at = moto_dynamo.load_dump(table, "sigstop-45s")["_capture"]["captured_at_unix"]
    text = asyncio.run(_scrape(moto_dynamo, table, at, "--ring.stale-after", "30s"))
    stale = series(text, "ringwatch_ring_stale_members")
    assert stale[frozenset({"table": table, "ring": "collectors/ring"}.items())] == 1
    ages = series(text, "ringwatch_member_heartbeat_age_seconds")
    frozen = frozenset({"table": table, "ring": "collectors/ring", "member": "ingester-2"}.items())
    assert ages[frozen] > 45


def test_current_member_states_mode_serves_only_the_current_state(moto_dynamo: MotoDynamo) -> None:
    table = "states-current"
    at = moto_dynamo.load_dump(table, "healthy")["_capture"]["captured_at_unix"]
    text = asyncio.run(_scrape(moto_dynamo, table, at, "--metrics.member-states", "current"))
    states = series(text, "ringwatch_member_state")
    assert len(states) == 6
    assert all(v == 1 for v in states.values())
    gateway = frozenset(
        {
            "table": table,
            "ring": "collectors/store-gateway",
            "member": "extra-1",
            "state": "JOINING",
        }.items()
    )
    assert gateway in states


def test_cas_progress_is_tracked_across_two_scans(moto_dynamo: MotoDynamo) -> None:
    """ingester-2 froze between the healthy and the sigstop dumps; its peers moved."""
    table = "cas-progress"
    first = moto_dynamo.load_dump(table, "healthy")
    second = load_dump("sigstop-45s")
    t1, t2 = first["_capture"]["captured_at_unix"], second["_capture"]["captured_at_unix"]
    now = [t1]

    async def run() -> tuple[str, str]:
        async with running_exporter(_argv(moto_dynamo, table), clock=lambda: now[0]) as (exp, url):
            await exp.scan_once()
            before = (await fetch(url + "/metrics"))[1].decode()
            moto_dynamo.load(table, second["Items"], fresh=False)
            now[0] = t2
            await exp.scan_once()
            after = (await fetch(url + "/metrics"))[1].decode()
            return before, after

    before, after = asyncio.run(run())
    last_change = series(after, "ringwatch_member_cas_last_change_timestamp_seconds")
    writes = series(after, "ringwatch_member_cas_writes_total")

    def key(member: str) -> frozenset:
        return frozenset({"table": table, "ring": "collectors/ring", "member": member}.items())

    assert (
        series(before, "ringwatch_member_cas_last_change_timestamp_seconds")[key("ingester-2")]
        == t1
    )
    assert last_change[key("ingester-2")] == t1  # version 18 both times: no progress
    assert writes[key("ingester-2")] == 18
    assert last_change[key("ingester-1")] == t2  # 18 -> 27
    assert writes[key("ingester-1")] == 27


def test_query_mode_and_scan_mode_give_the_same_series(moto_dynamo: MotoDynamo) -> None:
    table = "query-vs-scan"
    document = moto_dynamo.load_dump(table, "healthy")
    at = document["_capture"]["captured_at_unix"]
    rings = sorted({i["RingKey"]["S"] for i in document["Items"]})
    scanned = asyncio.run(_scrape(moto_dynamo, table, at))
    ring_flags = [arg for ring in rings for arg in ("--dynamodb.ring-key", ring)]
    queried = asyncio.run(_scrape(moto_dynamo, table, at, *ring_flags))

    def ring_and_member_series(text: str) -> dict:
        return {
            k: v
            for k, v in samples(text).items()
            if k[0].startswith(("ringwatch_member_", "ringwatch_ring_"))
        }

    assert ring_and_member_series(scanned) == ring_and_member_series(queried)
    assert len(ring_and_member_series(scanned)) > 50
    assert series(queried, "ringwatch_requests_total")[
        frozenset({"table": table, "operation": "Query", "result": "success"}.items())
    ] == len(rings)


def test_one_ring_key_limits_the_series_to_that_ring(moto_dynamo: MotoDynamo) -> None:
    table = "one-ring"
    at = moto_dynamo.load_dump(table, "healthy")["_capture"]["captured_at_unix"]
    text = asyncio.run(_scrape(moto_dynamo, table, at, "--dynamodb.ring-key", "collectors/ring"))
    rings = {dict(k)["ring"] for k in series(text, "ringwatch_member_tokens")}
    assert rings == {"collectors/ring"}


def test_metrics_still_answer_when_dynamodb_is_gone_and_keep_the_last_snapshot() -> None:
    server = MotoDynamo()
    table = "server-stops"
    at = server.load_dump(table, "healthy")["_capture"]["captured_at_unix"]
    now = [at]

    async def run() -> tuple[str, str, float]:
        argv = _argv(
            server,
            table,
            "--scan.timeout",
            "2s",
            "--dynamodb.request-timeout",
            "500ms",
            "--scan.interval",
            "15s",
        )
        async with running_exporter(argv, clock=lambda: now[0]) as (exp, url):
            await exp.scan_once()
            good = (await fetch(url + "/metrics"))[1].decode()
            server.stop()
            now[0] = at + 5
            await exp.scan_once()
            loop = asyncio.get_running_loop()
            started = loop.time()
            status, body, _ = await fetch(url + "/metrics")
            elapsed = loop.time() - started
            assert status == 200
            return good, body.decode(), elapsed

    good, bad, elapsed = asyncio.run(run())
    print(f"/metrics answered in {elapsed * 1000:.1f} ms with DynamoDB gone")
    up = series(bad, "ringwatch_up")[frozenset({"table": table}.items())]
    assert up == 0
    assert series(bad, "ringwatch_member_tokens") == series(good, "ringwatch_member_tokens")
    assert (
        series(bad, "ringwatch_scans_total")[frozenset({"table": table, "result": "error"}.items())]
        == 1
    )
    assert (
        series(bad, "ringwatch_last_successful_scan_timestamp_seconds")[
            frozenset({"table": table}.items())
        ]
        == at
    )


def test_member_series_are_dropped_past_snapshot_max_age(moto_dynamo: MotoDynamo) -> None:
    table = "max-age"
    at = moto_dynamo.load_dump(table, "healthy")["_capture"]["captured_at_unix"]
    now = [at]

    async def run() -> tuple[str, str]:
        argv = _argv(moto_dynamo, table, "--snapshot.max-age", "30s")
        async with running_exporter(argv, clock=lambda: now[0]) as (exp, url):
            await exp.scan_once()
            fresh = (await fetch(url + "/metrics"))[1].decode()
            now[0] = at + 31
            expired = (await fetch(url + "/metrics"))[1].decode()
            return fresh, expired

    fresh, expired = asyncio.run(run())
    assert series(fresh, "ringwatch_member_tokens")
    assert not series(expired, "ringwatch_member_tokens")
    assert not series(expired, "ringwatch_ring_members")
    assert series(expired, "ringwatch_up")  # ringwatch's own series stay


def test_up_is_zero_and_last_success_absent_before_the_first_scan(moto_dynamo: MotoDynamo) -> None:
    async def run() -> str:
        async with running_exporter(_argv(moto_dynamo, "never-scanned")) as (_, url):
            status, body, _ = await fetch(url + "/metrics")
            ready, _, _ = await fetch(url + "/-/ready")
            assert (status, ready) == (200, 503)
            return body.decode()

    text = asyncio.run(run())
    assert series(text, "ringwatch_up") == {frozenset({"table": "never-scanned"}.items()): 0}
    assert not series(text, "ringwatch_last_successful_scan_timestamp_seconds")


def test_gzip_metrics_decompress_to_the_plain_body(moto_dynamo: MotoDynamo) -> None:
    table = "gzip"
    at = moto_dynamo.load_dump(table, "healthy")["_capture"]["captured_at_unix"]

    async def fetch_raw() -> tuple[bytes, bytes, dict]:
        import aiohttp

        async with aiohttp.ClientSession(auto_decompress=False) as session:
            async with running_exporter(_argv(moto_dynamo, table), clock=lambda: at) as (exp, url):
                await exp.scan_once()
                async with session.get(
                    url + "/metrics", headers={"Accept-Encoding": "identity"}
                ) as r:
                    plain = await r.read()
                async with session.get(url + "/metrics", headers={"Accept-Encoding": "gzip"}) as r:
                    return plain, await r.read(), dict(r.headers)

    plain, raw, headers = asyncio.run(fetch_raw())
    assert headers["Content-Encoding"] == "gzip"
    # Byte for byte: process facts are collected once per scan, so a scrape reads nothing.
    assert gzip.decompress(raw) == plain


# What Prometheus 2.x and 3.x send when scrape_protocols allow OpenMetrics.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def test_openmetrics_is_served_when_the_scraper_asks_and_text_stays_the_default(
    moto_dynamo: MotoDynamo,
) -> None:
    table = "openmetrics"
    at = moto_dynamo.load_dump(table, "healthy")["_capture"]["captured_at_unix"]

    async def run() -> dict[str, tuple[bytes, dict]]:
        async with running_exporter(_argv(moto_dynamo, table), clock=lambda: at) as (exp, url):
            await exp.scan_once()
            out = {}
            for name, accept in (
                ("om", PROMETHEUS_ACCEPT),
                ("none", ""),
                ("text", "text/plain;version=0.0.4"),
                ("om-refused", "application/openmetrics-text;q=0,text/plain"),
            ):
                status, body, headers = await fetch(url + "/metrics", headers={"Accept": accept})
                assert status == 200
                out[name] = (body, headers)
            status, zipped, headers = await fetch(
                url + "/metrics", headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
            )
            out["om-gzip"] = (zipped, headers)
            return out

    got = asyncio.run(run())
    om, om_headers = got["om"]
    assert om_headers["Content-Type"] == (
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )
    assert om.endswith(b"# EOF\n") and om.count(b"# EOF") == 1
    families = {f.name: f for f in openmetrics_families(om.decode())}  # strict parser
    assert families["ringwatch_member_cas_writes"].type == "counter"
    assert families["ringwatch_scans"].type == "counter"
    assert families["ringwatch_member_heartbeat_age_seconds"].type == "gauge"
    om_samples = {
        (s.name, frozenset(s.labels.items())): s.value for f in families.values() for s in f.samples
    }
    text_samples = samples(got["none"][0].decode())
    member_names = {n for n, _ in text_samples if n.startswith("ringwatch_member_")}
    assert member_names and {k: v for k, v in om_samples.items() if k[0] in member_names} == {
        k: v for k, v in text_samples.items() if k[0] in member_names
    }
    for name in ("none", "text", "om-refused"):
        assert got[name][1]["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8", name
    assert got["om-gzip"][1]["Content-Type"] == om_headers["Content-Type"]


def test_process_metrics_are_served_and_no_created_series(moto_dynamo: MotoDynamo) -> None:
    table = "conventions"
    at = moto_dynamo.load_dump(table, "healthy")["_capture"]["captured_at_unix"]
    text = asyncio.run(_scrape(moto_dynamo, table, at))
    names = {n for n, _ in samples(text)}
    assert {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
        "python_info",
    } <= names
    assert not [n for n in names if n.endswith("_created")]
    assert "_created" not in text


def _reference_ownership(tokens_by_member: dict[str, tuple[int, ...]]) -> dict[str, float]:
    """The definition, slowly: each token owns (previous token, token], wrapping;
    equal tokens are ordered by member name."""
    points = sorted((t, name) for name, tokens in tokens_by_member.items() for t in tokens)
    owned = dict.fromkeys(tokens_by_member, 0)
    for i, (token, name) in enumerate(points):
        owned[name] += (token - points[i - 1][0]) % (1 << 32)
    if points and not any(owned.values()):
        owned[points[0][1]] = 1 << 32
    return {name: value / (1 << 32) for name, value in owned.items()}


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet="abcdefg-0123", min_size=1, max_size=6),
        st.lists(
            st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 7, 2**31, 2**32 - 1])),
            max_size=12,
        ).map(tuple),
        max_size=8,
    )
)
def test_ownership_equals_the_definition_for_any_ring(ring: dict[str, tuple[int, ...]]) -> None:
    assert token_ownership(ring) == _reference_ownership(ring)
    # The decoder's packed tokens take the vectorised path; same answer.
    packed = {name: Tokens.from_values(tokens) for name, tokens in ring.items()}
    assert token_ownership(packed) == _reference_ownership(ring)


def test_own_series_rendered_once_still_show_every_scan_in_the_next_scrape(
    moto_dynamo: MotoDynamo,
) -> None:
    table = "own-series-cache"
    moto_dynamo.load_dump(table, "healthy")
    scans_key = ("ringwatch_scans_total", frozenset({"table": table, "result": "success"}.items()))

    async def run() -> list[float]:
        seen = []
        async with running_exporter(_argv(moto_dynamo, table)) as (exp, url):
            for _ in range(2):
                await exp.scan_once()
                for encoding in ("identity", "gzip", "identity"):
                    status, body, _ = await fetch(
                        url + "/metrics", headers={"Accept-Encoding": encoding}
                    )
                    assert status == 200
                    seen.append(samples(body.decode())[scans_key])
        return seen

    assert asyncio.run(run()) == [1, 1, 1, 2, 2, 2]


def test_a_frozen_5s_member_goes_stale_20s_after_its_last_beat_on_every_page_and_in_the_logs(
    moto_dynamo: MotoDynamo, caplog: pytest.LogCaptureFixture
) -> None:
    """The exporter learns the period of members beating every 5 s (scanned every 5 s,
    fake clock), publishes it, and judges the one that freezes stale once its heartbeat
    is over 20 s old: in the roll-up, /ring.json and the log, not at the 1m cap."""
    from support.heartbeats import BeatingMember

    table = "period-learning"
    moto_dynamo.load(table, [])
    client = moto_dynamo.client()
    start = 1_795_669_000.3
    members = [
        BeatingMember("ingester-1", 5, start),
        BeatingMember("ingester-2", 5, start, frozen_at=start + 60),
    ]
    now = [start]
    stale_at: list[float] = []

    async def run() -> None:
        async with running_exporter(_argv(moto_dynamo, table), clock=lambda: now[0]) as (
            exporter,
            url,
        ):
            for step in range(1, 40):
                now[0] = start + 5 * step - 2.5
                for member in members:
                    client.put_item(TableName=table, Item=member.item(now[0]))
                await exporter.scan_once()
                _, body, _ = await fetch(url + "/ring.json")
                [ring] = orjson.loads(body)["tables"][0]["rings"]
                judged = {m["member"]: m for m in ring["members"]}
                if judged["ingester-2"]["stale"] and not stale_at:
                    stale_at.append(now[0])
                    _, text, _ = await fetch(url + "/metrics")
                    got = series(text.decode(), "ringwatch_member_heartbeat_period_seconds")
                    assert sorted(got.values()) == [5, 5]
                    assert series(text.decode(), "ringwatch_ring_stale_members") == {
                        frozenset({"table": table, "ring": "collectors/ring"}.items()): 1
                    }
                    assert judged["ingester-2"]["stale_threshold_seconds"] == 20.0
                    assert judged["ingester-1"]["stale"] is False

    with caplog.at_level("INFO", logger="ringwatch"):
        asyncio.run(run())
    last_beat = start + 60
    print(f"stale {stale_at[0] - last_beat:.1f}s after the last heartbeat (scans every 5 s)")
    assert 20 < stale_at[0] - last_beat <= 25
    [went] = [r for r in caplog.records if r.getMessage() == "member went stale"]
    assert went.fields["member"] == "ingester-2"
    assert (went.fields["stale_threshold"], went.fields["heartbeat_period"]) == (20.0, 5)
