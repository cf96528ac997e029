"""Run the exporter in-process for a test: real client, real HTTP server on a free port."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web

from ringwatch.config import load_config
from ringwatch.serve.http import make_app
from ringwatch.serve.scanloop import ScanLoop


async def serve_exporter(exporter: ScanLoop, stack: AsyncExitStack) -> str:
    """Open `exporter`'s client and serve its HTTP app on a free loopback port, both
    closed with `stack`; the base URL."""
    await exporter.open(stack)
    runner = web.AppRunner(make_app(exporter), access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


@asynccontextmanager
async def running_exporter(
    argv: Sequence[str], clock: Callable[[], float] = time.time
) -> AsyncIterator[tuple[ScanLoop, str]]:
    """A ScanLoop with its client open and its HTTP app served; no scan loop
    (tests call `scan_once()` themselves)."""
    exporter = ScanLoop(load_config(list(argv), environ={}), clock=clock)
    async with AsyncExitStack() as stack:
        yield exporter, await serve_exporter(exporter, stack)


async def fetch(url: str, **kwargs: Any) -> tuple[int, bytes, dict[str, str]]:
    """GET `url`: status, body and headers."""
    async with aiohttp.ClientSession() as session, session.get(url, **kwargs) as resp:
        return resp.status, await resp.read(), dict(resp.headers)
