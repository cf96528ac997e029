"""`ringwatch serve` in-process against a HostileDynamo, for web-side tests."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp

from ringwatch.config import load_config
from ringwatch.serve.main import serve
from support.cli import table_args
from support.hostile import HostileDynamo, wait_until


@asynccontextmanager
async def serving(
    hostile: HostileDynamo, web_config: str | None = None, extra_argv: Sequence[str] = ()
) -> AsyncIterator[int]:
    """Serve on a free port of 127.0.0.1 (scans every second unless `extra_argv` says
    otherwise); yields the port; the server must stop cleanly (exit status 0)."""
    argv = [
        *table_args(hostile.url),
        "--scan.interval",
        "1s",
        *extra_argv,
    ]
    if web_config:
        argv += ["--web.config.file", web_config]
    stop = asyncio.Event()
    port: list[int] = []
    task = asyncio.create_task(
        serve(load_config(argv, environ={}), stop=stop, on_listening=lambda _h, p: port.append(p))
    )
    await wait_until(lambda: port or task.done(), 10)
    assert port, task.result()
    try:
        yield port[0]
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0


def basic_auth(user: str, password: str) -> dict[str, str]:
    """An Authorization header for basic auth."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def get(url: str, **kwargs: object) -> tuple[int, dict[str, str]]:
    """GET, read the body, return the status and the headers."""
    async with aiohttp.ClientSession() as session, session.get(url, **kwargs) as resp:
        await resp.read()
        return resp.status, dict(resp.headers)


@dataclass
class BcryptChecks:
    """Every bcrypt check ringwatch ran: (password, the hash it was checked against)."""

    checked: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def passwords(self) -> list[str]:
        """The passwords checked, in order."""
        return [password for password, _ in self.checked]
