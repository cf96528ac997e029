"""Hostile items through the whole chain: a DynamoDB endpoint (the hostile one in
good mode, or moto), the real exporter, its real HTTP pages.

Whatever the items (extreme numbers, bytes that are not UTF-8, keys repeated,
garbage, a whole ring Desc), no scan crashes, every page answers 200, the
exposition parses with prometheus_client and passes `promtool check metrics`,
no series appears twice, and every decodable member is served.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import cramjam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.exposition import assert_no_duplicate_series, promtool_check_metrics, value
from support.exposition import samples as metric_samples
from support.hostile import ExporterUnderTest, HostileDynamo, wait_until, wire_item
from support.items import InstanceDescBytes
from support.moto import MotoDynamo

TABLE = "hostile-items"
INT64 = st.integers(-(2**63), 2**63 - 1)
EXTREME_INT64 = st.sampled_from([-(2**63), -(2**62), -1, 0, 10**17, 2**62, 2**63 - 1])
# What a DynamoDB number can be: up to 38 digits, magnitude below 1e126.
DYNAMODB_INT = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from(
        [
            0,
            2**63 - 1,
            2**63,
            2**64 - 1,
            2**64,
            2**64 + 1,
            -(2**63) - 1,
            10**38 - 1,
            10**125,
            -(10**125),
        ]
    ),
)
# A CAS counter: a DynamoDB number that is a whole number, not negative (anything else in
# `version` is a counted decode error).
DYNAMODB_COUNT = st.one_of(
    st.integers(0, 2**70),
    st.sampled_from([0, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**64 + 1, 10**38 - 1, 10**125]),
)
LABEL_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10)
RAW_BYTES = st.binary(max_size=12) | st.sampled_from(
    [b"\xff\xfe", b"zone-\xc3", b'we"ird\\\n', b"\x00", "zoné".encode()]
)


@dataclass(frozen=True)
class Case:
    items: list[dict[str, Any]]
    decodable: set[tuple[str, str]]  # (ring, member) every one of which must be served


def _data(desc: Any) -> str:
    raw = desc.SerializeToString()
    return base64.b64encode(bytes(cramjam.snappy.compress_raw(raw))).decode()


@st.composite
def members(draw: Any) -> dict[str, Any]:
    """A decodable item: any InstanceDesc field values, any CAS count, any ttl."""
    desc = InstanceDescBytes(
        addr=draw(RAW_BYTES),
        zone=draw(RAW_BYTES),
        state=draw(st.integers(-(2**31), 2**31 - 1) | st.integers(0, 6)),
        timestamp=draw(INT64 | EXTREME_INT64),
        registered_timestamp=draw(INT64 | EXTREME_INT64),
        tokens=draw(st.lists(st.integers(0, 2**32 - 1), max_size=6)),
    )
    item = {
        "RingKey": {"S": draw(st.sampled_from(["collectors/ring", 'r"\\\n', "é"]))},
        "InstanceKey": {"S": draw(LABEL_TEXT)},
        "Data": {"B": _data(desc)},
        "version": {"N": str(draw(DYNAMODB_COUNT))},
    }
    ttl = draw(st.none() | DYNAMODB_INT)
    if ttl is not None:
        item["ttl"] = {"N": str(ttl)}
    return item


@st.composite
def hostile(draw: Any) -> dict[str, Any]:
    """An item that may or may not be decodable: numbers no DynamoDB holds, garbage
    Data, a ring Desc, mistyped attributes."""
    item = draw(members())
    kind = draw(st.sampled_from(["version", "ttl", "data", "desc", "attribute"]))
    if kind in ("version", "ttl"):
        item[kind] = {
            "N": draw(
                st.sampled_from(
                    [
                        "1" * 5000,
                        "0." + "1" * 5000,
                        "1e200",
                        "-1e300",
                        "nan",
                        "inf",
                        "1.5",
                        "1e5",
                        " 7",
                        "0x10",
                        "",
                        "٣",
                    ]
                )
            )
        }
    elif kind == "data":
        item["Data"] = {"B": base64.b64encode(draw(st.binary(max_size=40))).decode()}
    elif kind == "desc":
        entry = b"\x0a\x02ab\x12\x04\x10\x01\x30\x05"
        raw = b"\x0a" + bytes([len(entry)]) + entry
        item["Data"] = {"B": base64.b64encode(bytes(cramjam.snappy.compress_raw(raw))).decode()}
    else:
        item[draw(st.sampled_from(["RingKey", "InstanceKey", "Data", "version"]))] = draw(
            st.sampled_from([{"N": "1"}, {"S": 5}, {"B": None}, "text", None, {}])
        )
    return item


@st.composite
def cases(draw: Any) -> Case:
    good = draw(st.lists(members(), max_size=8))
    bad = draw(st.lists(hostile(), max_size=5))
    repeated = draw(st.lists(st.sampled_from(good), max_size=2)) if good else []
    items = draw(st.permutations(good + bad + repeated))
    keys = {(i["RingKey"]["S"], i["InstanceKey"]["S"]) for i in good}
    return Case(items, keys)


def _argv(endpoint_url: str) -> list[str]:
    return [
        "--dynamodb.table",
        TABLE,
        "--dynamodb.region",
        "us-east-1",
        "--dynamodb.endpoint-url",
        endpoint_url,
    ]


def _one_scan(items: list[dict[str, Any]]) -> tuple[ExporterUnderTest, dict[str, str]]:
    """One scan of `items` by the real exporter behind a hostile endpoint; its pages."""
    with HostileDynamo(items=items) as endpoint, asyncio.Runner() as runner:
        rw = ExporterUnderTest(_argv(endpoint.url))
        runner.run(rw.__aenter__())
        try:
            runner.run(rw.scan())
            pages = runner.run(_pages(rw.base_url))
        finally:
            runner.run(rw.__aexit__())
    return rw, pages


async def _pages(base_url: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as session:
        out = {}
        for path in ("/metrics", "/ring", "/ring.json", "/-/ready"):
            async with session.get(base_url + path) as resp:
                out[path] = await resp.text()
                assert resp.status == 200, (path, resp.status, out[path][-500:])
        return out


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_hostile_items_never_crash_a_scan_or_a_page_and_every_member_is_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    examples = int(os.environ.get("RINGWATCH_HYPOTHESIS_EXAMPLES", "150"))
    with HostileDynamo() as endpoint, asyncio.Runner() as runner:
        rw = ExporterUnderTest(_argv(endpoint.url))
        runner.run(rw.__aenter__())
        started = time.monotonic()

        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
        @given(cases())
        def check(case: Case) -> None:
            endpoint.items = case.items
            caplog.clear()
            runner.run(rw.scan())
            assert not [r for r in caplog.records if r.getMessage() == "scan crashed"]
            view = rw.exporter.snapshot.table(TABLE)
            assert view.ok, view.error
            pages = runner.run(_pages(rw.base_url))
            text = pages["/metrics"]
            samples = metric_samples(text)  # parses with prometheus_client
            assert_no_duplicate_series(text)
            promtool_check_metrics(text)
            served = {
                (dict(labels)["ring"], dict(labels)["member"])
                for name, labels in samples
                if name == "ringwatch_member_tokens"
            }
            assert case.decodable <= served
            # Good + bad = every item: nothing silently dropped.
            assert len(served) + len(view.decode_errors) == len(case.items)
            for _ring, member in case.decodable:
                assert f'data-member="{_html(member)}"' in pages["/ring"]
                assert _json_str(member) in pages["/ring.json"]

        try:
            check()
        finally:
            runner.run(rw.__aexit__())
        print(f"{examples} hostile scans through the exporter in {time.monotonic() - started:.1f}s")


def _html(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def _json_str(text: str) -> str:
    import orjson

    return orjson.dumps(text).decode()


def _member(name: str, version: str = "7", **desc: Any) -> dict[str, Any]:
    fields = {"addr": b"10.0.0.1:9095", "timestamp": int(time.time()), "tokens": [1]} | desc
    item = wire_item("collectors/ring", name, b"")
    item["Data"] = {"B": _data(InstanceDescBytes(**fields))}
    item["version"] = {"N": version}
    return item


async def _run_until_first_scan(rw: ExporterUnderTest, within: float = 15.0) -> None:
    """The real scan loop, stopped once one scan finished (or `within` passed)."""
    stop = asyncio.Event()
    loop = asyncio.create_task(rw.exporter.run(stop))
    try:
        await wait_until(lambda: rw.exporter.scans_finished > 0, within)
    finally:
        stop.set()
        await loop


@pytest.mark.parametrize("store", ["hostile", "moto"])
def test_a_5000_digit_version_is_one_counted_decode_error_and_the_exporter_gets_ready(
    store: str, moto_dynamo: MotoDynamo
) -> None:
    # moto refuses a 5000-digit integer but stores 5000 decimals; the hostile endpoint
    # sends what it is given.
    digits = "1" * 5000 if store == "hostile" else "0." + "1" * 5000
    items = [_member("ingester-1"), _member("ingester-2", version=digits)]
    with HostileDynamo(items=items) as endpoint, asyncio.Runner() as runner:
        url = endpoint.url
        if store == "moto":
            moto_dynamo.load(TABLE, items)
            url = moto_dynamo.endpoint_url
        rw = ExporterUnderTest(_argv(url))
        runner.run(rw.__aenter__())
        try:
            runner.run(_run_until_first_scan(rw))
            pages = runner.run(_pages(rw.base_url))
        finally:
            runner.run(rw.__aexit__())
    own = metric_samples(rw.exporter.self_metrics().decode())
    assert value(own, "ringwatch_scans_total", table=TABLE, result="success") == 1
    assert value(own, "ringwatch_decode_errors_total", table=TABLE, reason="value") == 1
    assert value(own, "ringwatch_up", table=TABLE) == 1
    served = metric_samples(pages["/metrics"])
    assert value(served, "ringwatch_member_tokens", member="ingester-1") == 1


def test_a_scan_that_crashes_on_a_bug_is_counted_and_readiness_follows_spec() -> None:
    with HostileDynamo(items=[_member("ingester-1")]) as endpoint, asyncio.Runner() as runner:
        rw = ExporterUnderTest(_argv(endpoint.url))

        def broken_build(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug in the snapshot builder")

        rw.exporter.builder.build = broken_build  # type: ignore[method-assign]
        runner.run(rw.__aenter__())
        try:
            runner.run(_run_until_first_scan(rw, within=5.0))
            ready = runner.run(_status(rw.base_url + "/-/ready"))
            own = runner.run(_text(rw.base_url + "/metrics"))
        finally:
            runner.run(rw.__aexit__())
    assert ready == 200
    samples = metric_samples(own)
    assert value(samples, "ringwatch_scans_total", table=TABLE, result="crashed") == 1
    assert value(samples, "ringwatch_up", table=TABLE) == 0


async def _status(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status


async def _text(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        return await resp.text()


def test_extreme_values_render_on_every_page() -> None:
    huge = 2**64 + 5
    items = [
        _member("far-future", registered_timestamp=10**17),
        _member("far-past", registered_timestamp=-(2**62), timestamp=-(2**63)),
        _member("huge-version", version=str(huge)),
        _member("huge-ttl") | {"ttl": {"N": str(10**125)}},
    ]
    _, pages = _one_scan(items)
    assert "out of calendar range" in pages["/ring"]
    assert f'"cas_version":"{huge}"' in pages["/ring.json"].replace(" ", "")
    assert f'"ttl":"{10**125}"' in pages["/ring.json"].replace(" ", "")
    samples = metric_samples(pages["/metrics"])
    assert value(samples, "ringwatch_member_cas_writes_total", member="huge-version") == huge
    assert value(samples, "ringwatch_member_registered_timestamp_seconds", member="far-past") == -(
        2**62
    )
    promtool_check_metrics(pages["/metrics"])


def test_repeated_items_are_served_once_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    one, two = _member("ingester-1"), _member("ingester-2")
    rw, pages = _one_scan([one, two, one, one])
    assert_no_duplicate_series(pages["/metrics"])
    samples = metric_samples(pages["/metrics"])
    assert value(samples, "ringwatch_ring_members", state="ACTIVE") == 2
    own = metric_samples(rw.exporter.self_metrics().decode())
    assert value(own, "ringwatch_decode_errors_total", table=TABLE, reason="duplicate") == 2


def test_the_duplicate_series_check_sees_what_a_dict_of_samples_hides() -> None:
    text = 'a{x="1"} 1\na{x="1"} 1\n'
    assert len(metric_samples(text)) == 1
    with pytest.raises(AssertionError, match="appear more than once"):
        assert_no_duplicate_series(text)


def test_decode_error_logs_are_capped_per_scan_and_the_counter_has_them_all(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = [wire_item("collectors/ring", f"bad-{i}", b"\xff not snappy") for i in range(3000)]
    with HostileDynamo(items=[_member("ingester-1"), *bad]) as endpoint, asyncio.Runner() as runner:
        rw = ExporterUnderTest(_argv(endpoint.url))
        runner.run(rw.__aenter__())
        try:
            with caplog.at_level(logging.WARNING, logger="ringwatch"):
                runner.run(rw.scan())
        finally:
            runner.run(rw.__aexit__())
    lines = [r for r in caplog.records if "cannot decode" in r.getMessage()]
    print(f"{len(lines)} log lines for 3000 undecodable items")
    assert len(lines) == 21
    assert lines[-1].fields["not_logged"] == 2980  # type: ignore[attr-defined]
    own = metric_samples(rw.exporter.self_metrics().decode())
    assert value(own, "ringwatch_decode_errors_total", table=TABLE, reason="snappy") == 3000
