"""Log lines: logfmt and JSON parse, every change is logged once, a persisting
failure is rate-limited. The exporter scans the real dumps in a real
DynamoDB-compatible server; its clock is injected."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from support.cortexdata import capture_time, load_dump
from support.moto import MotoDynamo

from ringwatch.config import load_config
from ringwatch.logs import LOGGER, RateLimitedLog, log, setup_logging
from ringwatch.serve.scanloop import ScanLoop

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LOGFMT_PAIR = re.compile(r'([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?:\s+|$)')


def parse_logfmt(line: str) -> dict[str, Any]:
    """Strict enough: the whole line must be key=value pairs; quoted values are
    JSON strings, bare true/false/null/numbers are JSON too."""
    fields: dict[str, Any] = {}
    position = 0
    for match in LOGFMT_PAIR.finditer(line):
        assert match.start() == position, f"junk at {position} in {line!r}"
        key, raw = match.groups()
        if raw.startswith('"'):
            fields[key] = json.loads(raw)
        else:
            try:
                fields[key] = json.loads(raw)
            except json.JSONDecodeError:
                fields[key] = raw
        position = match.end()
    assert position == len(line), f"junk at {position} in {line!r}"
    return fields


@pytest.fixture
def captured() -> Iterator[Callable[[str], io.StringIO]]:
    """setup_logging into a buffer; puts the loggers back afterwards."""
    root = logging.getLogger()
    saved = (LOGGER.handlers[:], LOGGER.level, LOGGER.propagate, root.handlers[:])

    def setup(fmt: str) -> io.StringIO:
        buffer = io.StringIO()
        setup_logging("info", fmt, stream=buffer)
        return buffer

    yield setup
    LOGGER.handlers[:], LOGGER.level, LOGGER.propagate, root.handlers[:] = saved


def json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


AWKWARD = {
    "spaces": "two words",
    "quote": 'say "hi"',
    "equals": "a=b",
    "newline": "x\ny",
    "escape": "\x1b[31m",
    "empty": "",
    "plain": "ingester-1",
    "yes": True,
    "no": False,
    "nothing": None,
    "count": 3,
    "ratio": 0.25,
    "negative": -1.5,
}


def test_logfmt_lines_parse_back_to_the_same_fields(captured) -> None:
    buffer = captured("logfmt")
    log(logging.WARNING, "member went stale", **AWKWARD)
    [line] = buffer.getvalue().splitlines()
    fields = parse_logfmt(line)
    assert TS.match(fields.pop("ts"))
    assert re.fullmatch(r"test_logs\.py:\d+", fields.pop("caller"))
    assert fields.pop("level") == "warn"
    assert fields.pop("msg") == "member went stale"
    assert fields == AWKWARD
    assert " yes=true no=false nothing=null count=3 ratio=0.25 " in line


def test_json_lines_are_one_object_each_with_ts_level_msg(captured) -> None:
    buffer = captured("json")
    log(logging.INFO, "first scan", **AWKWARD)
    log(logging.ERROR, "weird", value=float("nan"), ts="a field called ts")
    first, second = json_lines(buffer)
    assert TS.match(first.pop("ts"))
    assert re.fullmatch(r"test_logs\.py:\d+", first.pop("caller"))
    assert (first.pop("level"), first.pop("msg")) == ("info", "first scan")
    assert first == AWKWARD
    assert (second["level"], second["value"], second["field_ts"]) == (
        "error",
        "nan",
        "a field called ts",
    )
    assert TS.match(second["ts"])


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_library_errors_and_tracebacks_come_out_in_the_same_format(captured, fmt: str) -> None:
    buffer = captured(fmt)
    logging.getLogger("aiohttp.server").error("Error handling request")
    logging.getLogger("aiohttp.server").info("not shown: below warn for libraries")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        LOGGER.exception("scan crashed")
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2
    parse = json.loads if fmt == "json" else parse_logfmt
    library, crash = (parse(line) for line in lines)
    assert (library["level"], library["logger"], library["msg"]) == (
        "error",
        "aiohttp.server",
        "Error handling request",
    )
    assert crash["msg"] == "scan crashed"
    assert "RuntimeError: boom" in crash["err"]
    assert crash["caller"].startswith("test_logs.py:")


# -- the exporter's own events ------------------------------------------------
class Driver:
    """A ScanLoop with an injected clock, scanned by hand."""

    def __init__(self, moto: MotoDynamo, *tables: str, stale_after: str = "30s") -> None:
        argv = [
            "--dynamodb.endpoint-url",
            moto.endpoint_url,
            "--dynamodb.region",
            "us-east-1",
            "--dynamodb.max-attempts",
            "1",
            "--ring.stale-after",
            stale_after,
        ]
        for table in tables:
            argv += ["--dynamodb.table", table]
        self.now = 0.0
        self.exporter = ScanLoop(load_config(argv, environ={}), clock=lambda: self.now)

    async def scans(self, count: int, at: float) -> None:
        self.now = at
        for _ in range(count):
            await self.exporter.scan_once()


def events(buffer: io.StringIO, msg: str) -> list[dict[str, Any]]:
    return [e for e in json_lines(buffer) if e["msg"] == msg]


def test_member_state_changes_are_logged_once_not_on_every_scan(
    captured, moto_dynamo: MotoDynamo
) -> None:
    buffer = captured("json")
    table = "logs-changes"
    driver = Driver(moto_dynamo, table)
    sigstop, sigterm = capture_time("sigstop-45s"), capture_time("sigterm-3s")

    async def run() -> None:
        async with AsyncExitStack() as stack:
            await driver.exporter.open(stack)
            moto_dynamo.load_dump(table, "sigstop-45s")
            await driver.scans(3, sigstop - 20)  # ingester-2 frozen 26 s: not stale yet
            await driver.scans(3, sigstop)  # 46 s: stale
            moto_dynamo.load_dump(table, "sigterm-3s")  # thawed; ingester-3 LEAVING
            await driver.scans(3, sigterm)
            moto_dynamo.load_dump(table, "after-sigterm-exit")  # ingester-3 gone
            await driver.scans(3, capture_time("after-sigterm-exit"))

    asyncio.run(run())

    def member(event: dict[str, Any]) -> tuple[str, str]:
        return event["ring"], event["member"]

    [first] = events(buffer, "first scan")
    assert (first["table"], first["rings"], first["members"], first["stale"]) == (table, 4, 6, 0)
    assert [member(e) for e in events(buffer, "member went stale")] == [
        ("collectors/ring", "ingester-2")
    ]
    assert [member(e) for e in events(buffer, "member recovered")] == [
        ("collectors/ring", "ingester-2")
    ]
    [changed] = events(buffer, "member changed state")
    assert (member(changed), changed["previous_state"], changed["state"]) == (
        ("collectors/ring", "ingester-3"),
        "ACTIVE",
        "LEAVING",
    )
    assert [member(e) for e in events(buffer, "member disappeared")] == [
        ("collectors/ring", "ingester-3")
    ]
    assert events(buffer, "member appeared") == []
    assert len(json_lines(buffer)) == 5  # nothing else, in 12 scans


def test_stale_members_at_the_first_scan_are_named(captured, moto_dynamo: MotoDynamo) -> None:
    buffer = captured("json")
    moto_dynamo.load_dump("logs-first-stale", "sigstop-45s")
    driver = Driver(moto_dynamo, "logs-first-stale")

    async def run() -> None:
        async with AsyncExitStack() as stack:
            await driver.exporter.open(stack)
            await driver.scans(3, capture_time("sigstop-45s"))

    asyncio.run(run())
    assert events(buffer, "first scan")[0]["stale"] == 1
    [stale] = events(buffer, "member is stale")
    assert (stale["member"], stale["heartbeat_age"]) == ("ingester-2", "46.3s")
    assert events(buffer, "member went stale") == []


def test_a_persisting_scan_failure_is_logged_once_and_its_recovery_once(
    captured, moto_dynamo: MotoDynamo
) -> None:
    buffer = captured("json")
    table = "logs-appears-later"
    at = capture_time("healthy")
    driver = Driver(moto_dynamo, table)

    async def run() -> None:
        async with AsyncExitStack() as stack:
            await driver.exporter.open(stack)
            await driver.scans(5, at)  # the table does not exist yet
            moto_dynamo.load_dump(table, "healthy")
            await driver.scans(3, at)

    asyncio.run(run())
    [failed] = events(buffer, "scan failed")
    assert (failed["table"], failed["result"], failed["suppressed"]) == (table, "error", 0)
    assert "ResourceNotFoundException" in failed["err"]
    assert re.fullmatch(r"\d+(\.\d+)?m?s", failed["duration"]), failed["duration"]
    assert failed["serving_last_good"] is False
    [recovered] = events(buffer, "scan recovered")
    assert (recovered["table"], recovered["failed_scans"]) == (table, 5)
    assert len(events(buffer, "first scan")) == 1
    order = [e["msg"] for e in json_lines(buffer)]
    assert order == ["scan failed", "scan recovered", "first scan"]


def test_an_undecodable_item_is_logged_once_while_it_stays(
    captured, moto_dynamo: MotoDynamo
) -> None:
    buffer = captured("json")
    table = "logs-bad-item"
    items = load_dump("healthy")["Items"]
    bad = dict(
        items[0],
        InstanceKey={"S": "broken-1"},
        Data={"B": base64.b64encode(b"\x00\x01garbage").decode()},
    )
    moto_dynamo.load(table, [*items, bad])
    driver = Driver(moto_dynamo, table)

    async def run() -> None:
        async with AsyncExitStack() as stack:
            await driver.exporter.open(stack)
            await driver.scans(4, capture_time("healthy"))

    asyncio.run(run())
    [skipped] = events(buffer, "item skipped: cannot decode")
    assert (skipped["ring"], skipped["member"]) == ("collectors/compactor", "broken-1")
    assert skipped["reason"] in ("snappy", "protobuf")


def test_rate_limit_logs_again_after_the_window_with_the_suppressed_count() -> None:
    limit = RateLimitedLog(every=300.0)
    assert limit.should_log("t", 0.0, kind="timeout")
    assert limit.suppressed("t") == 0
    assert [limit.should_log("t", float(s), kind="timeout") for s in (15, 30, 299)] == [False] * 3
    assert limit.should_log("t", 300.0, kind="timeout")
    assert limit.suppressed("t") == 3
    assert limit.should_log("t", 301.0, kind="throttled")  # a different failure: at once
    assert not limit.should_log("t", 302.0, kind="throttled")
    assert limit.end("t") == 7
    assert limit.end("t") is None  # recovery is reported once
    assert limit.should_log("t", 303.0, kind="timeout")  # a new failure: at once


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.25, "250ms"),
        (1.2345, "1.234s"),
        (46.3, "46.3s"),
        (125, "2m5s"),
        (3600, "1h"),
        (3725.5, "1h2m5.5s"),
        (-2.5, "-2.5s"),
    ],
)
def test_durations_are_written_with_their_unit_as_go_does(captured, seconds, text) -> None:
    buffer = captured("logfmt")
    log(logging.INFO, "scan failed", duration=seconds, heartbeat_age=seconds, count=3, error="boom")
    fields = parse_logfmt(buffer.getvalue().strip())
    assert (fields["duration"], fields["heartbeat_age"], fields["count"]) == (text, text, 3)
    assert fields["err"] == "boom" and "error" not in fields
    assert list(fields)[:4] == ["ts", "caller", "level", "msg"]


def test_log_lines_go_to_the_stderr_of_the_moment_not_a_closed_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging("info", "logfmt")
    first.close()  # what a test harness does with the stream it captured into
    now = io.StringIO()
    monkeypatch.setattr(sys, "stderr", now)
    log(logging.WARNING, "still heard", table="t")
    logging.getLogger("aiohttp.server").error("a library's error")
    assert 'msg="still heard"' in now.getvalue()
    assert "a library's error" in now.getvalue()
