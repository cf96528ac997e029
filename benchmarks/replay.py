"""Replay server: serves pre-rendered DynamoDB Scan and Query pages over HTTP.

It does no work per item, so what a benchmark measures is the client's cost,
not an emulator's. Dispatch is on `X-Amz-Target` and `ExclusiveStartKey`.
Unsigned requests are refused the way DynamoDB refuses them, so a client that
stopped signing would fail here too.

A table named `<base>-frozen` serves generation 0 forever (a ring where no
member heartbeats); `<base>` serves the next generation at each new scan or
query sequence (every member heartbeated once since the last scan).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import orjson
from aiohttp import web
from ringtable import RingTable

JSON = "application/x-amz-json-1.0"


def _error(kind: str, message: str, status: int = 400) -> web.Response:
    body = orjson.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{kind}", "message": message})
    return web.Response(status=status, body=body, content_type=JSON)


def _next_index(pages: list[bytes], start_key: dict | None) -> int:
    if not start_key:
        return 0
    wanted = (start_key["RingKey"]["S"], start_key["InstanceKey"]["S"])
    for index, page in enumerate(pages):
        last = orjson.loads(page).get("LastEvaluatedKey")
        if last and (last["RingKey"]["S"], last["InstanceKey"]["S"]) == wanted:
            return index + 1
    raise KeyError(wanted)


class Replay:
    def __init__(self, tables: dict[str, RingTable]) -> None:
        self.tables = tables
        self._generation: dict[str, int] = {}
        self._scan_starts: dict[str, int] = {}
        self._index_cache: dict[tuple[int, str, str], int] = {}
        self.requests = 0

    def _table(self, name: str) -> tuple[RingTable, bool] | None:
        if name in self.tables:
            return self.tables[name], False
        base = name.removesuffix("-frozen")
        if base != name and base in self.tables:
            return self.tables[base], True
        return None

    def _page(self, pages: list[bytes], start_key: dict | None) -> bytes:
        if not start_key:
            return pages[0]
        key = (id(pages), start_key["RingKey"]["S"], start_key["InstanceKey"]["S"])
        index = self._index_cache.get(key)
        if index is None:
            index = self._index_cache[key] = _next_index(pages, start_key)
        return pages[index]

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if not request.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
            return _error(
                "MissingAuthenticationTokenException", "Request is missing Authentication Token"
            )
        target = request.headers.get("X-Amz-Target", "")
        body = orjson.loads(await request.read())
        found = self._table(body.get("TableName", ""))
        if found is None:
            return _error("ResourceNotFoundException", "Requested resource not found")
        table, frozen = found
        name = body["TableName"]
        start_key = body.get("ExclusiveStartKey")
        if not start_key:
            count = self._scan_starts.get(name, 0)
            self._scan_starts[name] = count + 1
            self._generation[name] = 0 if frozen else count % table.generations
        generation = self._generation.get(name, 0)
        if target.endswith(".Scan"):
            pages = table.scan_pages[generation]
        elif target.endswith(".Query"):
            ring = body["ExpressionAttributeValues"][":ring"]["S"]
            pages = table.query_pages(generation, ring)
        else:
            return _error("UnknownOperationException", f"not replayed: {target}")
        try:
            page = self._page(pages, start_key)
        except (KeyError, IndexError):
            return _error("ValidationException", "The provided starting key is invalid")
        return web.Response(
            body=page, content_type=JSON, headers={"x-amzn-RequestId": f"replay-{self.requests}"}
        )


def start(tables: dict[str, RingTable]) -> tuple[str, Replay, Callable[[], None]]:
    """Serve in a background thread; returns (endpoint URL, replay, stop)."""
    replay = Replay(tables)
    ready = threading.Event()
    state: dict = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        state["loop"] = loop

        async def main() -> None:
            app = web.Application(client_max_size=1 << 20)
            app.router.add_post("/", replay.handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            state["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            state["stop"] = stop_event = asyncio.Event()
            ready.set()
            await stop_event.wait()
            await runner.cleanup()

        loop.run_until_complete(main())
        loop.close()

    thread = threading.Thread(target=run, name="replay", daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("replay server did not start")

    def stop() -> None:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)

    return f"http://127.0.0.1:{state['port']}", replay, stop


def main() -> None:
    """Serve tables `ring-<N>`, `onering-<N>` and `ring-empty` until interrupted: for profiling."""
    import argparse
    import signal
    import sys

    from ringtable import ONE_RING, make_members

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--one-ring-sizes", default="", help="all members in one ring")
    args = parser.parse_args()
    tables = {"ring-empty": RingTable([])}
    for n in (int(s) for s in args.sizes.split(",") if s):
        tables[f"ring-{n}"] = RingTable(make_members(n))
    for n in (int(s) for s in args.one_ring_sizes.split(",") if s):
        tables[f"onering-{n}"] = RingTable(make_members(n, rings=ONE_RING))
    endpoint, _, stop = start(tables)
    print(endpoint, flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        stop()
        sys.exit(0)


if __name__ == "__main__":
    main()
