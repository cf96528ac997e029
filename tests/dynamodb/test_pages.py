"""How a table's pages are read: in order, each handled while the next is fetched."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import msgspec
import pytest
from support.cortexdata import load_dump
from support.hostile import HostileDynamo

from ringwatch.config import load_config
from ringwatch.dynamodb.client import open_client, page_items
from ringwatch.dynamodb.reader import TableRead, read_table

ITEMS = load_dump("healthy")["Items"]
HANDLING = 0.3  # seconds each page's handling takes (a slow decode)


def _read_table(
    hostile: HostileDynamo, on_page: Callable[[Any], list[Any]], scan_timeout: float, *flags: str
) -> TableRead:
    """The hostile server's table read through ringwatch's client, pages to `on_page`."""
    config = load_config(
        [
            "--dynamodb.table",
            "ring-table",
            "--dynamodb.region",
            "us-east-1",
            "--dynamodb.endpoint-url",
            hostile.url,
            *flags,
        ],
        environ={},
    )

    async def run() -> TableRead:
        async with AsyncExitStack() as stack:
            client = await open_client(config, stack)
            return await read_table(
                client,
                "ring-table",
                (),
                consistent_read=False,
                scan_timeout=scan_timeout,
                on_page=on_page,
            )

    return asyncio.run(run())


def test_each_page_is_handled_while_the_next_pages_request_is_in_flight() -> None:
    handled: list[tuple[float, float, int]] = []  # (started, ended, items) per page

    def on_page(items: Any) -> list[Any]:
        started = time.monotonic()
        time.sleep(HANDLING)  # CPU-bound work blocks the loop, as decoding does
        decoded = page_items(items)
        handled.append((started, time.monotonic(), len(decoded)))
        return decoded

    with HostileDynamo(items=list(ITEMS)) as hostile:
        # Two pages that point to a next one, then the last page.
        hostile.script.extend(["endless", "endless", "good"])
        read = _read_table(hostile, on_page, 10.0)
        requests = list(hostile.requests)
    assert read.ok and read.pages == 3
    assert [n for _, _, n in handled] == [len(ITEMS)] * 3
    assert read.items == list(ITEMS) * 3  # in page order
    for page in (0, 1):
        # The request for page k+1 reached the server before page k's handling ended:
        # without the overlap it would be sent only after.
        ended = handled[page][1]
        arrived = requests[page + 1].arrived
        print(f"page {page}: handling ended {ended - arrived:.3f}s after the next request")
        assert arrived < ended


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (msgspec.Raw(b'[{"RingKey": {"S": "r"}}]'), [{"RingKey": {"S": "r"}}]),
        (msgspec.Raw(b"null"), []),
        (msgspec.Raw(b"[]"), []),
        (None, []),
        ([{"a": 1}], [{"a": 1}]),  # items another parser already made
    ],
)
def test_page_items_are_plain_values_and_null_is_no_item(items: Any, expected: Any) -> None:
    assert page_items(items) == expected


def test_a_failed_read_leaves_no_page_handling_behind(caplog: pytest.LogCaptureFixture) -> None:
    import gc

    def on_page(items: Any) -> list[Any]:
        raise RuntimeError("a bug in the page handler")

    with HostileDynamo(items=list(ITEMS)) as hostile:
        # A page that points to a next one, whose request then hangs.
        hostile.script.extend(["endless", "silent"])
        with caplog.at_level("ERROR", logger="asyncio"):
            read = _read_table(
                hostile,
                on_page,
                5.0,
                "--dynamodb.request-timeout",
                "300ms",
                "--dynamodb.max-attempts",
                "1",
            )
            gc.collect()
    # The read failed on the hanging request; the handler's error was taken, not
    # left for asyncio to report as "never retrieved".
    assert read.result == "timeout" and read.items == []
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
