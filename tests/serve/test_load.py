"""50 concurrent /metrics clients for 10 s against a real `ringwatch serve`
process, while scans run and while the DynamoDB endpoint turns hostile (the
modes change every half second): every response is complete and parses, and
none is a 5xx. The figures are printed, not asserted."""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.cortexdata import load_dump
from support.hostile import HostileDynamo, percentile
from test_lifecycle import _start

CLIENTS = 50
SECONDS = 10.0
PHASES = (
    "good",
    "silent",
    "good",
    "trickle",
    "reset",
    "good",
    "http500",
    "endless",
    "stall",
    "good",
    "malformed",
    "ptee",
)


@pytest.mark.slow
def test_50_concurrent_scrapers_for_10s_while_scanning_and_while_dynamodb_is_hostile() -> None:
    with HostileDynamo(items=list(load_dump("healthy")["Items"])) as hostile:
        proc, port, _lines = _start(
            hostile,
            "--scan.interval",
            "200ms",
            "--dynamodb.request-timeout",
            "300ms",
            "--scan.timeout",
            "600ms",
        )
        done = threading.Event()

        def cycle_faults() -> None:
            for i in range(10**6):
                hostile.mode = PHASES[i % len(PHASES)]
                if done.wait(0.5):
                    return

        cycler = threading.Thread(target=cycle_faults, daemon=True)
        try:
            cycler.start()
            results = asyncio.run(_load(f"http://127.0.0.1:{port}/metrics"))
        finally:
            done.set()
            cycler.join(5)
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        modes_seen = {seen.mode for seen in hostile.requests}

    statuses = [status for status, _, _ in results]
    latencies = [latency for _, latency, _ in results]
    bodies = {body for _, _, body in results}
    print(
        f"\nload: {CLIENTS} clients x {SECONDS:.0f}s: {len(results)} responses "
        f"({len(results) / SECONDS:.0f}/s), p50={percentile(latencies, 0.5) * 1000:.1f}ms "
        f"p99={percentile(latencies, 0.99) * 1000:.1f}ms max={max(latencies) * 1000:.1f}ms, "
        f"{len(bodies)} distinct bodies; DynamoDB modes during the run: {sorted(modes_seen)}"
    )
    assert len(results) >= CLIENTS
    assert all(status == 200 for status in statuses), sorted(set(statuses))
    assert len(modes_seen) >= 6, "the endpoint really was hostile during the run"
    for body in bodies:
        text = body.decode()
        assert text.endswith("\n")
        names = {family.name for family in text_string_to_metric_families(text)}
        assert {"ringwatch_build_info", "ringwatch_up", "ringwatch_scans"} <= names


async def _load(url: str) -> list[tuple[int, float, bytes]]:
    results: list[tuple[int, float, bytes]] = []
    end = time.monotonic() + SECONDS

    async def client() -> None:
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < end:
                started = time.monotonic()
                try:
                    async with session.get(url) as resp:
                        body = await resp.read()
                        results.append((resp.status, time.monotonic() - started, body))
                except aiohttp.ClientError as exc:
                    results.append((-1, time.monotonic() - started, repr(exc).encode()))

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return results
