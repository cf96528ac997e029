"""`ringwatch scan`: one scan of every table, for a person at 3 a.m. or a script.

Exit status: 0 no problem; 1 problems found (a stale member, a member in
JOINING or PENDING registered longer ago than --ring.stuck-after, items that
could not be decoded); 2 a table could not be scanned.
"""

from __future__ import annotations

import asyncio
import sys
import time
from contextlib import AsyncExitStack
from typing import TextIO

import orjson

from ringwatch.config import Config
from ringwatch.dynamodb.client import open_client
from ringwatch.dynamodb.reader import read_table
from ringwatch.render.report import exit_status, json_document, write_text
from ringwatch.snapshot.builder import SnapshotBuilder
from ringwatch.snapshot.model import Snapshot
from ringwatch.snapshot.problems import find_problems


async def scan_snapshot(config: Config, at: float | None = None) -> Snapshot:
    clock = (lambda: at) if at is not None else time.time
    async with AsyncExitStack() as stack:
        client = await open_client(config, stack)
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(read_table(
                client, table, config.ring_keys, consistent_read=config.consistent_read,
                scan_timeout=config.scan_timeout, wall_clock=clock))
                for table in config.tables]
    builder = SnapshotBuilder(
        stale_after=config.stale_after, stale_periods=config.stale_periods,
        stale_floor=config.stale_floor)
    return builder.build([t.result() for t in tasks], None, clock())


def run_scan(config: Config, out: TextIO = sys.stdout) -> int:
    # The snapshot is handed out through a list, not as asyncio.run's result: on
    # exit asyncio.run restores the SIGINT handler, and signal.signal() reprs the
    # handler it replaces, a partial holding the finished task and so the whole
    # snapshot (0.55 s of CPU at 10k members, twice the rest of the scan).
    scanned: list[Snapshot] = []

    async def scan() -> None:
        scanned.append(await scan_snapshot(config, config.at))

    asyncio.run(scan())
    snapshot = scanned[0]
    at = config.at if config.at is not None else snapshot.created_at
    problems = find_problems(snapshot, at, config.stuck_after)
    status = exit_status(snapshot, problems)
    if config.output == "json":
        document = json_document(snapshot, config, at, problems, status)
        out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        write_text(snapshot, config, at, problems, status, out)
    out.flush()
    return status
