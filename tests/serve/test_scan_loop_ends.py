"""The scan loop never dies silently: if it ends other than by shutdown, /-/healthy
answers 503 at once, and `ringwatch serve` logs one line and exits non-zero."""

from __future__ import annotations

import asyncio
import logging

import pytest
from support.cli import table_args
from support.harness import fetch, running_exporter
from support.hostile import HostileDynamo, wait_until

from ringwatch.config import load_config
from ringwatch.serve.main import EXIT_SCAN_LOOP_ENDED, serve
from ringwatch.serve.scanloop import ScanLoop


def _argv(hostile: HostileDynamo) -> list[str]:
    return [
        *table_args(hostile.url),
        "--scan.interval",
        "200ms",
    ]


def _break_after_first_scan(scan_loop: ScanLoop) -> None:
    """The second scan fails, and so does the accounting of its failure (a bug in the
    path that keeps the loop alive): the exception leaves the loop."""
    real_scan = scan_loop.scan_once

    async def scan_then_fail():  # type: ignore[no-untyped-def]
        if scan_loop.scans_finished:
            raise RuntimeError("scan failed")
        return await real_scan()

    def broken_accounting() -> None:
        raise RuntimeError("accounting failed too")

    scan_loop.scan_once = scan_then_fail  # type: ignore[method-assign]
    scan_loop._account_crash = broken_accounting  # type: ignore[method-assign]


def test_healthy_turns_503_the_moment_the_loop_ends(hostile: HostileDynamo) -> None:
    async def run() -> tuple[int, int, str | None]:
        async with running_exporter(_argv(hostile)) as (scan_loop, url):
            _break_after_first_scan(scan_loop)
            stop = asyncio.Event()
            task = asyncio.create_task(scan_loop.run(stop))
            await wait_until(lambda: scan_loop.scans_finished >= 1, 10)
            before = (await fetch(url + "/-/healthy"))[0]
            with pytest.raises(RuntimeError, match="accounting failed too"):
                await asyncio.wait_for(task, 10)
            return before, (await fetch(url + "/-/healthy"))[0], scan_loop.ended

    before, after, ended = asyncio.run(run())
    assert (before, after) == (200, 503)
    assert ended is not None and "accounting failed too" in ended


def test_a_loop_stopped_by_shutdown_has_not_ended(hostile: HostileDynamo) -> None:
    async def run() -> str | None:
        async with running_exporter(_argv(hostile)) as (scan_loop, _url):
            stop = asyncio.Event()
            task = asyncio.create_task(scan_loop.run(stop))
            await wait_until(lambda: scan_loop.scans_finished >= 1, 10)
            stop.set()
            await asyncio.wait_for(task, 10)
            assert scan_loop.healthy()
            return scan_loop.ended

    assert asyncio.run(run()) is None


def test_serve_logs_one_line_and_exits_non_zero_when_the_loop_ends(
    hostile: HostileDynamo, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(_argv(hostile), environ={})
    scan_loop = ScanLoop(config)
    _break_after_first_scan(scan_loop)

    async def run() -> int:
        return await asyncio.wait_for(serve(config, scan_loop=scan_loop), 20)

    with caplog.at_level(logging.INFO, logger="ringwatch"):
        code = asyncio.run(run())
    errors = [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.getMessage() != "scan crashed"
    ]
    print(f"\nscan loop ended: exit {code}, lines {[r.getMessage() for r in errors]}")
    assert code == EXIT_SCAN_LOOP_ENDED != 0
    assert [r.getMessage() for r in errors] == ["scan loop ended; exiting"]
    assert "accounting failed too" in errors[0].fields["error"]  # type: ignore[attr-defined]
    assert not scan_loop.healthy()
