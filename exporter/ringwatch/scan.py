"""`ringwatch scan`: one scan of every table, for a person at 3 a.m. or a script.

Exit status: 0 no problem; 1 problems found (a stale member, a member in
JOINING or PENDING registered longer ago than --ring.stuck-after, items that
could not be decoded); 2 a table could not be scanned; 3 the report could not
be written (stdout closed, disk full). A reader that goes away (`| head -1`)
ends the command quietly with 141, as SIGPIPE would (see cli.py).
"""

from __future__ import annotations

import asyncio
import errno
import io
import sys
import time
from contextlib import AsyncExitStack
from typing import TextIO

import orjson

from ringwatch.config import Config
from ringwatch.dynamodb.client import open_client
from ringwatch.dynamodb.reader import read_tables
from ringwatch.gcpause import gc_paused
from ringwatch.render.report import EXIT_OUTPUT_FAILED, exit_status, json_document, write_text
from ringwatch.snapshot.builder import SnapshotBuilder
from ringwatch.snapshot.model import Snapshot
from ringwatch.snapshot.problems import find_problems


class OutputError(Exception):
    """The report could not be written to stdout; one line, exit `status`."""

    status = EXIT_OUTPUT_FAILED


async def scan_snapshot(config: Config, at: float | None = None) -> Snapshot:
    """One read of every table, built into a snapshot judged as of `at` (default: now)."""

    def clock() -> float:
        return at if at is not None else time.time()

    async with AsyncExitStack() as stack:
        client = await open_client(config, stack)
        builder = SnapshotBuilder(
            stale_after=config.stale_after,
            stale_periods=config.stale_periods,
            stale_floor=config.stale_floor,
        )
        builder.start_scan()  # pages are decoded as they arrive, their dicts freed
        reads = await read_tables(
            client,
            config.tables,
            config.ring_keys,
            consistent_read=config.consistent_read,
            scan_timeout=config.scan_timeout,
            wall_clock=clock,
            on_page=builder.decode_page,
        )
    return builder.build(reads, None, clock())


def _write_all(out: TextIO, text: str) -> None:
    """Write all of `text`, or raise: a binary buffer's write may stop short when the
    reader goes away mid-write (and says so only by its count), so loop on it."""
    buffer = getattr(out, "buffer", None)
    if buffer is None:
        out.write(text)
        out.flush()
        return
    out.flush()
    data = memoryview(text.encode(out.encoding or "utf-8", out.errors or "strict"))
    while data:
        written = buffer.write(data)
        if not written:
            raise OSError(errno.EIO, "stdout took no bytes")
        data = data[written:]
    buffer.flush()


def run_scan(config: Config, out: TextIO | None = None) -> int:
    """Scan, print the report on `out` (stdout), return the exit status."""
    # The snapshot is handed out through a list, not as asyncio.run's result: on
    # exit asyncio.run restores the SIGINT handler, and signal.signal() reprs the
    # handler it replaces, a partial holding the finished task and so the whole
    # snapshot (0.55 s of CPU at 10k members, twice the rest of the scan).
    scanned: list[Snapshot] = []

    async def scan() -> None:
        scanned.append(await scan_snapshot(config, config.at))

    # One scan and out: its objects hold no cycles, and collections would walk
    # every page dict and member (a third of a 20k-member scan's CPU).
    with gc_paused():
        asyncio.run(scan())
        snapshot = scanned[0]
        at = config.at if config.at is not None else snapshot.created_at
        problems = find_problems(snapshot, at, config.stuck_after)
        status = exit_status(snapshot, problems)
        if config.output == "json":
            document = json_document(snapshot, config, at, problems, status)
            report = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
            del document
        else:
            buffer = io.StringIO()
            write_text(snapshot, config, at, problems, status, buffer)
            report = buffer.getvalue()
    out = sys.stdout if out is None else out
    if out is None:  # Python's sys.stdout when file descriptor 1 is closed
        raise OutputError("cannot write the report: stdout is closed")
    try:
        _write_all(out, report)
    except BrokenPipeError:
        raise
    except (OSError, ValueError) as exc:  # ValueError: a closed file object
        raise OutputError(
            f"cannot write the report to stdout: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    return status
