"""Read every item of a ring table, under the scan's outer deadline.

Scan mode pages through the whole table; with ring keys, one Query (paged)
per key. Only read operations are ever sent. The outcome is a `TableRead`,
good or bad; nothing here raises for a DynamoDB failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ringwatch.dynamodb.client import (
    AttemptObserver,
    attempt_in_flight_seconds,
    classify_exception,
    page_items,
)

# A table is never this big; a server handing out LastEvaluatedKey forever is.
MAX_PAGES = 100_000

# The table whose read is running in this task: attempt observers use it as a label.
current_table: ContextVar[str] = ContextVar("ringwatch_current_table", default="")


@dataclass
class TableRead:
    """One table's read: its items if it succeeded, else why it failed."""

    table: str
    started_at: float
    duration: float = 0.0
    items: list[Any] = field(default_factory=list)  # item dicts, or what on_page made of them
    pages: int = 0
    consumed_capacity: float = 0.0
    result: str = "success"  # success, timeout, throttled, error
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when every page of the table was read."""
        return self.result == "success"


# Turns one page's items into what the read keeps (the items themselves by default).
# It gets them as the client parsed them: a `msgspec.Raw` of the Items JSON, or
# (another parser) a list of item dicts.
PageHandler = Callable[[Any], list[Any]]


async def _handle(on_page: PageHandler, items: Any) -> list[Any]:
    # A few turns of the loop first, so that the next page's request, started just
    # before, is on the wire before this CPU-bound handling holds the loop (one turn
    # was enough in tests/dynamodb/test_pages.py; three are cheap).
    for _ in range(3):
        await asyncio.sleep(0)
    return on_page(items)


async def _read_pages(
    client: Any,
    operation: str,
    request: dict[str, Any],
    read: TableRead,
    on_page: PageHandler | None = None,
) -> None:
    call = getattr(client, operation)
    start_key: dict[str, Any] | None = None
    # The last page's handling, run while the next page's request is in flight (the
    # loop runs it once this task waits on the network): a page's decoding costs the
    # scan's wall time nothing but the last page's.
    handling: asyncio.Task[list[Any]] | None = None
    try:
        while True:
            if start_key is not None:
                request["ExclusiveStartKey"] = start_key
            response = await call(**request)
            if handling is not None:
                read.items.extend(await handling)
                handling = None
            read.pages += 1
            items = response.get("Items") or []
            capacity = response.get("ConsumedCapacity")
            if isinstance(capacity, dict):
                read.consumed_capacity += float(capacity.get("CapacityUnits") or 0.0)
            start_key = response.get("LastEvaluatedKey")
            if on_page is None:
                read.items.extend(page_items(items))
            elif start_key:
                handling = asyncio.ensure_future(_handle(on_page, items))
            else:
                read.items.extend(on_page(items))
            # Handled as it arrives: at most two pages' JSON are held at once.
            del items, response
            if not start_key:
                return
            if read.pages >= MAX_PAGES:
                raise RuntimeError(f"gave up after {MAX_PAGES} pages: LastEvaluatedKey never ends")
    finally:
        # The read failed with a page still being handled: stop it (on a finished
        # one, cancel() marks its error as seen, so asyncio logs nothing).
        if handling is not None:
            handling.cancel()


async def read_table(
    client: Any,
    table: str,
    ring_keys: Sequence[str],
    *,
    consistent_read: bool,
    scan_timeout: float,
    observer: AttemptObserver | None = None,
    wall_clock: Any = time.time,
    on_page: PageHandler | None = None,
) -> TableRead:
    """Read every item of `table` (one Query per ring key, else a Scan) within `scan_timeout`;
    with `on_page`, keep what it makes of each page's items instead of the items."""
    current_table.set(table)
    read = TableRead(table=table, started_at=wall_clock())
    started = time.monotonic()
    base = {
        "TableName": table,
        "ConsistentRead": consistent_read,
        "ReturnConsumedCapacity": "TOTAL",
    }
    try:
        async with asyncio.timeout(scan_timeout):
            if ring_keys:
                for ring_key in ring_keys:
                    request = dict(
                        base,
                        KeyConditionExpression="RingKey = :ring",
                        ExpressionAttributeValues={":ring": {"S": ring_key}},
                    )
                    await _read_pages(client, "query", request, read, on_page)
            else:
                await _read_pages(client, "scan", dict(base), read, on_page)
    except TimeoutError:
        read.result, read.error = "timeout", f"scan did not finish within {scan_timeout}s"
    except ClientError as exc:
        read.result = classify_exception(exc)
        error = exc.response.get("Error", {})
        read.error = f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip()
    except (BotoCoreError, ValueError, RuntimeError, OSError) as exc:
        read.result = classify_exception(exc)
        read.error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # anything else still ends as a failed, counted scan
        read.result, read.error = "error", f"{type(exc).__name__}: {exc}"
    in_flight = attempt_in_flight_seconds()
    if in_flight is not None and observer is not None:
        # An attempt that botocore never reported (cut by the scan deadline, or a
        # body that would not parse) still counts as one.
        observer("Query" if ring_keys else "Scan", read.result, in_flight)
    read.duration = time.monotonic() - started
    if not read.ok:
        read.items = []
    return read


async def read_tables(
    client: Any,
    tables: Sequence[str],
    ring_keys: Sequence[str],
    *,
    consistent_read: bool,
    scan_timeout: float,
    observer: AttemptObserver | None = None,
    wall_clock: Any = time.time,
    on_page: PageHandler | None = None,
) -> list[TableRead]:
    """Read every table concurrently, each under its own scan deadline, in `tables` order."""
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(
                read_table(
                    client,
                    table,
                    ring_keys,
                    consistent_read=consistent_read,
                    scan_timeout=scan_timeout,
                    observer=observer,
                    wall_clock=wall_clock,
                    on_page=on_page,
                )
            )
            for table in tables
        ]
    return [task.result() for task in tasks]
