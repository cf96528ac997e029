"""ringwatch only reads: every DynamoDB operation `serve` and `scan` send over a
full run is recorded by the endpoint (its X-Amz-Target), and only Query and
Scan may appear."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aiohttp
import pytest
from support.cortexdata import load_dump
from support.hostile import HostileDynamo, wait_until

from ringwatch.config import load_config
from ringwatch.serve.main import serve

READ_OPERATIONS = {"Scan", "Query", "DescribeTable"}
ITEMS = load_dump("healthy")["Items"]


def _argv(url: str, *extra: str) -> list[str]:
    return [
        "--dynamodb.table",
        "ring-table",
        "--dynamodb.region",
        "us-east-1",
        "--dynamodb.endpoint-url",
        url,
        "--dynamodb.request-timeout",
        "1s",
        "--scan.timeout",
        "2s",
        *extra,
    ]


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--dynamodb.ring-key", "collectors/ring", "--dynamodb.ring-key", "collectors/distributor"],
    ],
    ids=["scan", "query-per-ring-key"],
)
def test_serve_sends_only_read_operations(extra: list[str]) -> None:
    with HostileDynamo(items=list(ITEMS)) as hostile:
        # A full run: good scans, a few faults (retries included), every endpoint read.
        hostile.script.extend(["http500", "ptee", "good", "malformed", "good"])
        config = load_config(
            _argv(
                hostile.url,
                "--scan.interval",
                "100ms",
                "--web.listen-address",
                "127.0.0.1:0",
                *extra,
            ),
            environ={},
        )

        async def run() -> None:
            stop = asyncio.Event()
            port: list[int] = []
            task = asyncio.create_task(
                serve(config, stop=stop, on_listening=lambda h, p: port.append(p))
            )
            await wait_until(lambda: hostile.count() >= 12, 20)
            async with aiohttp.ClientSession() as session:
                for path in ("/", "/metrics", "/ring", "/ring.json", "/-/healthy", "/-/ready"):
                    async with session.get(f"http://127.0.0.1:{port[0]}{path}") as resp:
                        assert resp.status == 200, path
            stop.set()
            assert await asyncio.wait_for(task, 10) == 0

        asyncio.run(run())
        targets = hostile.targets()
    print(
        f"\nserve {'Query' if extra else 'Scan'} mode: {len(targets)} requests, "
        f"operations {sorted(set(targets))}"
    )
    assert len(targets) >= 12
    assert set(targets) <= READ_OPERATIONS
    assert ("Query" if extra else "Scan") in targets


@pytest.mark.parametrize(
    "extra", [[], ["--dynamodb.ring-key", "collectors/ring"]], ids=["scan", "query-per-ring-key"]
)
def test_scan_command_sends_only_read_operations(extra: list[str]) -> None:
    with HostileDynamo(items=list(ITEMS)) as hostile:
        hostile.script.append("throttling")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ringwatch",
                "scan",
                *_argv(hostile.url, *extra),
                "--output",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        targets = hostile.targets()
    assert done.returncode in (0, 1), done.stderr
    assert targets and set(targets) <= READ_OPERATIONS
    assert ("Query" if extra else "Scan") in targets
