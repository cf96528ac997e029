"""Lifecycle under faults: SIGTERM while DynamoDB hangs stops the process within
5 s (exit 0); a scan loop that wedges turns /-/healthy to 503 within the contract's
bound (--scan.interval + --scan.timeout + 30 s), and not before."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time

import aiohttp
import pytest
from support.cli import serve_args, start_ringwatch, table_args
from support.hostile import HostileDynamo, wait_until

from ringwatch.config import load_config
from ringwatch.serve.main import serve
from ringwatch.serve.scanloop import ScanLoop


def _start(hostile: HostileDynamo, *extra: str) -> tuple[subprocess.Popen[str], int, list[str]]:
    running = start_ringwatch(*serve_args(hostile.url), *extra)
    return running.proc, running.port, running.lines


@pytest.mark.parametrize("mode", ["silent", "trickle", "stall", "endless"])
def test_sigterm_during_a_hostile_fault_exits_0_within_5s(
    hostile: HostileDynamo, mode: str
) -> None:
    hostile.mode = mode
    # Deadlines far longer than 5 s: the exit must not wait for them.
    proc, port, lines = _start(
        hostile,
        "--dynamodb.request-timeout",
        "60s",
        "--scan.timeout",
        "120s",
        "--dynamodb.max-attempts",
        "5",
    )
    try:
        asyncio.run(wait_until(lambda: hostile.count() >= 1, 10))
        time.sleep(0.3)  # let the attempt be well under way

        async def scrape() -> int:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/metrics") as resp,
            ):
                await resp.read()
                return resp.status

        assert asyncio.run(scrape()) == 200, "serving while the scan hangs"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"\nSIGTERM during {mode}: exit {code} after {took:.2f}s")
    assert code == 0, "".join(lines)
    assert took < 5.0


@pytest.mark.slow
def test_wedged_scan_loop_turns_healthy_to_503_within_the_bound(hostile: HostileDynamo) -> None:
    interval, scan_timeout = 0.2, 0.2
    bound = interval + scan_timeout + 30.0
    config = load_config(
        [
            *table_args(hostile.url),
            "--scan.interval",
            "200ms",
            "--scan.timeout",
            "200ms",
        ],
        environ={},
    )
    exporter = ScanLoop(config)
    real_scan = exporter.scan_once
    wedge = asyncio.Event()
    wedged: list[bool] = []

    async def scan_or_wedge():  # type: ignore[no-untyped-def]
        if wedge.is_set():
            wedged.append(True)
            await asyncio.Event().wait()  # never returns, outside every deadline
        return await real_scan()

    exporter.scan_once = scan_or_wedge  # type: ignore[method-assign]

    async def run() -> None:
        stop = asyncio.Event()
        port: list[int] = []
        task = asyncio.create_task(
            serve(config, stop=stop, scan_loop=exporter, on_listening=lambda _h, p: port.append(p))
        )
        await wait_until(lambda: exporter.scans_finished >= 2, 10)
        url = f"http://127.0.0.1:{port[0]}/-/healthy"
        async with aiohttp.ClientSession() as session:

            async def status() -> int:
                async with session.get(url) as resp:
                    return resp.status

            assert await status() == 200
            wedge.set()
            await wait_until(lambda: wedged, 5)
            # Scans never overlap: the last one to finish did so before this one began.
            finished = exporter.scans_finished
            last_finished = exporter.last_scan_finished
            assert last_finished is not None
            turned = None
            for _ in range(10**6):
                code = await status()
                now = time.monotonic()
                if code == 503:
                    turned = now - last_finished
                    break
                assert code == 200
                assert now - last_finished < bound + 2, "still healthy past the bound"
                await asyncio.sleep(0.25)
            print(f"\nwedged loop: /-/healthy 503 after {turned:.2f}s (bound {bound:.1f}s)")
            assert turned is not None
            assert bound - 1.0 <= turned <= bound + 1.0
            assert exporter.scans_finished == finished, "the loop really was wedged"
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0

    asyncio.run(run())
