"""A hostile DynamoDB endpoint: a small asyncio HTTP server on loopback.

It reads one HTTP request at a time (headers plus Content-Length body; keep-alive
connections are served request after request, as botocore reuses them), records
the request's `X-Amz-Target`, and then answers according to `mode`, which a test
may switch at any moment. `script` holds modes for the next requests, one each,
before `mode` applies again.

The server runs on its own event loop in a thread, so its timing does not depend
on the exporter's loop, and subprocess tests can use it as well.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MODES = (
    "good",  # a valid Scan/Query response with `items`
    "silent",  # (a) accept, read the request, never answer
    "trickle",  # (b) a valid response, one byte every `trickle_every` seconds
    "stall",  # (c) status line and headers, then nothing
    "reset",  # (d) headers and part of the body, then a TCP reset
    "http500",  # (e) HTTP 500 with a DynamoDB error body
    "ptee",  # (f) ProvisionedThroughputExceededException
    "throttling",  # (f) ThrottlingException
    "slow",  # (g) a valid response after `slow_delay` seconds
    "malformed",  # (i) HTTP 200, truncated JSON
    "wrongtype",  # (i) HTTP 200, an HTML page
    "endless",  # (j) a valid page with a new LastEvaluatedKey, forever
)
JSON_TYPE = "application/x-amz-json-1.0"


@dataclass
class Seen:
    target: str
    mode: str
    arrived: float
    body: dict[str, Any]
    ended: float | None = None


@dataclass
class HostileDynamo:
    items: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "good"
    script: deque[str] = field(default_factory=deque)
    trickle_every: float = 0.25
    slow_delay: float = 0.5
    requests: list[Seen] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _thread: threading.Thread | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _page: int = 0

    # -- lifecycle --------------------------------------------------------
    def start(self) -> HostileDynamo:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="hostile-dynamo", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("hostile server did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        assert self._thread is not None
        self._thread.join(5)
        self._loop = None

    def __enter__(self) -> HostileDynamo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def drop_connections(self) -> None:
        """Close every open connection (as a restarted endpoint would)."""
        loop = self._loop
        assert loop is not None

        def close() -> None:
            for writer in list(self._writers):
                writer.close()

        loop.call_soon_threadsafe(close)

    def targets(self) -> list[str]:
        return [seen.target for seen in list(self.requests)]

    def count(self) -> int:
        return len(self.requests)

    # -- HTTP -------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    return
                target, body = request
                mode = self.script.popleft() if self.script else self.mode
                seen = Seen(target=target, mode=mode, arrived=time.monotonic(), body=body)
                self.requests.append(seen)
                try:
                    keep_going = await self._answer(mode, body, reader, writer)
                finally:
                    seen.ended = time.monotonic()
                if not keep_going:
                    return
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            asyncio.CancelledError,
        ):  # cancelled only when the server stops
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader
    ) -> tuple[str, dict[str, Any]] | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        raw = await reader.readexactly(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        target = headers.get("x-amz-target", "").rpartition(".")[2]
        return target, body

    @staticmethod
    def _response(
        status: int, body: bytes, content_type: str = JSON_TYPE, reason: str = "OK"
    ) -> bytes:
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            f"x-amzn-requestid: {uuid.uuid4()}\r\n"
            f"content-type: {content_type}\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def _page_body(self, request: dict[str, Any], endless: bool = False) -> bytes:
        items = self.items
        if "KeyConditionExpression" in request:
            ring = request.get("ExpressionAttributeValues", {}).get(":ring", {}).get("S")
            items = [i for i in items if i.get("RingKey", {}).get("S") == ring]
        page: dict[str, Any] = {
            "Items": items,
            "Count": len(items),
            "ScannedCount": len(items),
            "ConsumedCapacity": {"TableName": request.get("TableName", ""), "CapacityUnits": 0.5},
        }
        if endless:
            self._page += 1
            page["LastEvaluatedKey"] = {
                "RingKey": {"S": "collectors/ring"},
                "InstanceKey": {"S": f"page-{self._page}"},
            }
        return json.dumps(page).encode()

    @staticmethod
    def _error(status: int, code: str, message: str) -> bytes:
        body = json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
        ).encode()
        reason = "Internal Server Error" if status == 500 else "Bad Request"
        return HostileDynamo._response(status, body, reason=reason)

    async def _answer(
        self,
        mode: str,
        request: dict[str, Any],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request; False closes the connection."""
        if mode in ("good", "slow", "endless"):
            if mode == "slow":
                await asyncio.sleep(self.slow_delay)
            writer.write(self._response(200, self._page_body(request, mode == "endless")))
            await writer.drain()
            return True
        if mode == "silent":
            await reader.read()  # until the client gives up and closes
            return False
        if mode == "trickle":
            response = self._response(200, self._page_body(request))
            for i in range(len(response)):
                writer.write(response[i : i + 1])
                await writer.drain()
                await asyncio.sleep(self.trickle_every)
            return True
        if mode == "stall":
            response = self._response(200, self._page_body(request))
            head, _, _ = response.partition(b"\r\n\r\n")
            writer.write(head + b"\r\n\r\n")
            await writer.drain()
            await reader.read()
            return False
        if mode == "reset":
            response = self._response(200, self._page_body(request))
            writer.write(response[: len(response) // 2 + 40])
            await writer.drain()
            sock = writer.get_extra_info("socket")
            # SO_LINGER 0: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if mode == "http500":
            writer.write(
                self._error(
                    500, "InternalServerError", "Internal server error (hostile test endpoint)"
                )
            )
        elif mode == "ptee":
            writer.write(
                self._error(
                    400,
                    "ProvisionedThroughputExceededException",
                    "The level of configured provisioned throughput for the table was exceeded.",
                )
            )
        elif mode == "throttling":
            writer.write(
                self._error(
                    400, "ThrottlingException", "Rate of requests exceeds the allowed throughput."
                )
            )
        elif mode == "malformed":
            body = self._page_body(request)
            writer.write(self._response(200, body[: len(body) // 2]))
        elif mode == "wrongtype":
            writer.write(
                self._response(
                    200, b"<html><body>502 Bad Gateway</body></html>", content_type="text/html"
                )
            )
        else:
            raise ValueError(f"unknown mode {mode!r}")
        await writer.drain()
        return True


def closed_port_url() -> str:
    """An endpoint on loopback where nothing listens: connection refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


UNRESOLVABLE_URL = "http://ringwatch-no-such-host.invalid:8000"


def wire_item(
    ring: str, member: str, data: bytes, version: int = 1, ttl: int | None = None
) -> dict[str, Any]:
    item = {
        "RingKey": {"S": ring},
        "InstanceKey": {"S": member},
        "Data": {"B": base64.b64encode(data).decode()},
        "version": {"N": str(version)},
    }
    if ttl is not None:
        item["ttl"] = {"N": str(ttl)}
    return item


# -- the exporter under test, in-process -----------------------------------


@dataclass
class Attempt:
    operation: str
    result: str
    seconds: float


class ExporterUnderTest:
    """A ScanLoop with its HTTP app on a free port and every attempt recorded;
    no scan loop: tests call `scan()` (timed) themselves."""

    def __init__(self, argv: list[str]) -> None:
        from ringwatch.config import load_config
        from ringwatch.serve.scanloop import ScanLoop

        self.config = load_config(argv, environ={})
        self.exporter = ScanLoop(self.config)
        self.attempts: list[Attempt] = []
        observe = self.exporter.observe_attempt

        def record(operation: str, result: str, seconds: float) -> None:
            self.attempts.append(Attempt(operation, result, seconds))
            observe(operation, result, seconds)

        # Installed before open(), so the client's hook reports here as well.
        self.exporter.observe_attempt = record  # type: ignore[method-assign]
        self.base_url = ""
        self._stack: Any = None

    async def __aenter__(self) -> ExporterUnderTest:
        from contextlib import AsyncExitStack

        from support.harness import serve_exporter

        self._stack = stack = AsyncExitStack()
        await stack.__aenter__()
        self.base_url = await serve_exporter(self.exporter, stack)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.__aexit__(None, None, None)

    async def client_for(self, endpoint_url: str) -> Any:
        """Another client of the same exporter, on another endpoint."""
        import dataclasses

        from ringwatch.dynamodb.client import open_client

        config = dataclasses.replace(self.config, endpoint_url=endpoint_url)
        return await open_client(config, self._stack, observer=self.exporter.observe_attempt)

    async def scan(self) -> float:
        started = time.monotonic()
        await self.exporter.scan_once()
        return time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class MetricsPoller:
    """GETs /metrics back to back (with a short pause) and keeps every latency."""

    def __init__(self, url: str, pause: float = 0.02, **get_kwargs: Any) -> None:
        self.url = url
        self.pause = pause
        self.get_kwargs = get_kwargs
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            while True:
                started = time.monotonic()
                try:
                    async with session.get(self.url, **self.get_kwargs) as resp:
                        body = await resp.read()
                        if resp.status != 200:
                            self.failures.append(f"status {resp.status}")
                        elif b"ringwatch_build_info" not in body:
                            self.failures.append("incomplete body")
                except aiohttp.ClientError as exc:
                    self.failures.append(repr(exc))
                self.latencies.append(time.monotonic() - started)
                await asyncio.sleep(self.pause)

    async def __aenter__(self) -> MetricsPoller:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def summary(self) -> str:
        return (
            f"/metrics answers={len(self.latencies)} "
            f"p50={percentile(self.latencies, 0.5) * 1000:.1f}ms "
            f"p99={percentile(self.latencies, 0.99) * 1000:.1f}ms "
            f"max={max(self.latencies, default=0) * 1000:.1f}ms"
        )


async def wait_until(predicate: Any, within: float, every: float = 0.02) -> None:
    """Poll `predicate` until true; AssertionError after `within` seconds."""
    deadline = time.monotonic() + within
    for _ in range(10**9):
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(every)


def serving_the_healthy_dump() -> Iterator[HostileDynamo]:
    """A HostileDynamo serving the healthy Cortex dump, for a fixture of any scope."""
    from support.cortexdata import load_dump

    with HostileDynamo(items=list(load_dump("healthy")["Items"])) as server:
        yield server
