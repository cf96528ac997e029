"""/metrics answers 200 with a whole, parseable page in every state the scan loop can
be in, for every format, read by real clients: curl (plain and --compressed), one
zlib inflater that must consume the whole body, and aiohttp's client."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from support.cortexdata import load_dump
from support.harness import running_exporter
from support.hostile import wait_until
from support.moto import MotoDynamo
from support.net import stop_process

from ringwatch.serve.scanloop import ScanLoop

TEXT = "text/plain"
OPENMETRICS = "application/openmetrics-text"
NOW = 2_000_000_000.0


@dataclass(frozen=True)
class Format:
    """One way of asking for /metrics."""

    accept: str | None
    gzipped: bool
    method: str = "GET"

    @property
    def openmetrics(self) -> bool:
        return self.accept == OPENMETRICS


FORMATS = {
    "text": Format(None, gzipped=False),
    "text-gzip": Format(None, gzipped=True),
    "openmetrics": Format(OPENMETRICS, gzipped=False),
    "openmetrics-gzip": Format(OPENMETRICS, gzipped=True),
    "head": Format(None, gzipped=False, method="HEAD"),
}


# -- the states ---------------------------------------------------------------------


def _undecodable_items() -> list[dict]:
    garbage = base64.b64encode(b"\xff\xfenot snappy, not protobuf").decode()
    return [
        {
            "RingKey": {"S": "collectors/ring"},
            "InstanceKey": {"S": f"ingester-{i}"},
            "Data": {"B": garbage},
            "version": {"N": "1"},
        }
        for i in range(3)
    ]


async def _before_first_scan(_loop: ScanLoop, _clock: list[float]) -> None:
    pass


async def _one_scan(loop: ScanLoop, _clock: list[float]) -> None:
    await loop.scan_once()


async def _expired(loop: ScanLoop, clock: list[float]) -> None:
    await loop.scan_once()
    clock[0] += 3600.0  # far past --snapshot.max-age (3 scan intervals by default)


# state -> (table contents or None for no table, what happens before the scrape)
STATES: dict[str, tuple[list[dict] | None, Callable]] = {
    "before-first-scan": (load_dump("healthy")["Items"], _before_first_scan),
    "failed-first-scan": (None, _one_scan),
    "empty-table": ([], _one_scan),
    "all-undecodable": (_undecodable_items(), _one_scan),
    "snapshot-expired": (load_dump("healthy")["Items"], _expired),
    "steady": (load_dump("healthy")["Items"], _one_scan),
}


def _table(moto: MotoDynamo, state: str) -> str:
    name = f"every-state-{state}"
    items = STATES[state][0]
    if items is not None:
        moto.load(name, items)
    return name


# -- the clients ----------------------------------------------------------------------


def _curl(url: str, fmt: Format) -> tuple[int, bytes]:
    argv = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"]
    if fmt.accept:
        argv += ["-H", f"Accept: {fmt.accept}"]
    if fmt.gzipped:
        argv.append("--compressed")
    if fmt.method == "HEAD":
        argv.append("-I")
    out = subprocess.run([*argv, url], capture_output=True, check=True, timeout=20).stdout
    body, _, status = out.rpartition(b"\n")
    return int(status), body


async def _aiohttp(
    url: str, fmt: Format, auto_decompress: bool
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Accept-Encoding": "gzip" if fmt.gzipped else "identity"}
    if fmt.accept:
        headers["Accept"] = fmt.accept
    async with (
        aiohttp.ClientSession(auto_decompress=auto_decompress) as session,
        session.request(fmt.method, url, headers=headers) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


def _one_inflater(raw: bytes) -> bytes:
    """The body through a single gzip inflater, which must end exactly at its end."""
    inflater = zlib.decompressobj(wbits=31)
    text = inflater.decompress(raw) + inflater.flush()
    assert inflater.eof, "the gzip stream ends"
    assert inflater.unused_data == b"", "nothing after the first gzip member"
    return text


def _parse(text: bytes, openmetrics: bool) -> set[str]:
    """Family names, as prometheus_client's parser for that format reads them."""
    decoded = text.decode()
    if openmetrics:
        assert decoded.endswith("# EOF\n")
        return {family.name for family in openmetrics_families(decoded)}
    return {family.name for family in text_string_to_metric_families(decoded)}


def _promtool_accepts(text: bytes) -> None:
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30
    )
    # promtool exits 3 for lint findings (not errors); 1 if it cannot parse the page.
    assert checked.returncode in (0, 3), checked.stderr.decode()[:500]


# -- the matrix ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt_name", list(FORMATS))
@pytest.mark.parametrize("state", list(STATES))
def test_metrics_is_a_whole_parseable_page_in_every_state(
    moto_dynamo: MotoDynamo, state: str, fmt_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    fmt = FORMATS[fmt_name]
    table = _table(moto_dynamo, state)
    argv = [
        "--dynamodb.table",
        table,
        "--dynamodb.endpoint-url",
        moto_dynamo.endpoint_url,
        "--dynamodb.region",
        "us-east-1",
        "--dynamodb.max-attempts",
        "1",
    ]
    clock = [NOW]

    async def run() -> tuple[tuple, tuple, tuple[int, bytes]]:
        async with running_exporter(argv, clock=lambda: clock[0]) as (loop, url):
            await STATES[state][1](loop, clock)
            decoded = await _aiohttp(url + "/metrics", fmt, auto_decompress=True)
            raw = await _aiohttp(url + "/metrics", fmt, auto_decompress=False)
            curled = await asyncio.to_thread(_curl, url + "/metrics", fmt)
            return decoded, raw, curled

    (status, headers, body), (raw_status, raw_headers, raw), curled = asyncio.run(run())
    assert not [r for r in caplog.records if r.name.startswith("aiohttp")], "no traceback"
    assert status == raw_status == curled[0] == 200
    assert int(raw_headers["Content-Length"]) == len(raw) or fmt.method == "HEAD"
    if fmt.method == "HEAD":
        assert body == raw == b"" and int(headers["Content-Length"]) > 0
        return
    assert headers.get("Content-Encoding") == ("gzip" if fmt.gzipped else None)
    assert headers["Content-Type"].startswith(OPENMETRICS if fmt.openmetrics else TEXT)
    plain = _one_inflater(raw) if fmt.gzipped else raw
    assert body == plain == curled[1], "every client reads the same whole page"
    families = _parse(plain, fmt.openmetrics)
    assert {"ringwatch_up", "ringwatch_build_info", "process_cpu_seconds"} <= {
        f.removesuffix("_total") for f in families
    }
    if state == "steady":
        assert "ringwatch_member_heartbeat_age_seconds" in families
    if not fmt.openmetrics:
        _promtool_accepts(plain)


def test_a_serve_process_on_a_missing_table_answers_curl_with_the_whole_page(
    moto_dynamo: MotoDynamo,
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ringwatch",
            "serve",
            "--dynamodb.table",
            "no-such-table",
            "--dynamodb.endpoint-url",
            moto_dynamo.endpoint_url,
            "--dynamodb.region",
            "us-east-1",
            "--web.listen-address",
            "127.0.0.1:0",
            "--scan.interval",
            "1s",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = ""
        deadline = time.monotonic() + 20
        while "msg=listening" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        port = int(line.split("address=http://", 1)[1].split()[0].rsplit(":", 1)[1])
        url = f"http://127.0.0.1:{port}/metrics"
        ready = url.replace("/metrics", "/-/ready")
        asyncio.run(wait_until(lambda: _curl(ready, FORMATS["text"])[0] == 200, 10, every=0.2))
        for name in ("text", "text-gzip"):
            status, body = _curl(url, FORMATS[name])
            assert status == 200
            assert b'ringwatch_up{table="no-such-table"} 0.0' in body, name
            assert b"ringwatch_build_info{" in body and b"process_cpu_seconds_total" in body
    finally:
        stop_process(proc)
