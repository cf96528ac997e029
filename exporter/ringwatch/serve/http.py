"""HTTP endpoints. Every handler reads prepared state; none does DynamoDB I/O."""

from __future__ import annotations

import asyncio
import base64
import binascii
import html
import os
from collections.abc import Awaitable, Callable
from typing import BinaryIO

import orjson
from aiohttp import web

from ringwatch import __version__
from ringwatch.render import ringpage
from ringwatch.render.exposition import CONTENT_TYPE
from ringwatch.render.ringjson import snapshot_json
from ringwatch.serve.exporter import Exporter
from ringwatch.serve.webconfig import BasicAuth

EXPORTER_KEY = web.AppKey("exporter", Exporter)

_LANDING = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ringwatch</title></head>
<body><h1>ringwatch {version}</h1>
<p>Watches the Cortex ring in DynamoDB table(s): {tables}.</p>
<ul>
<li><a href="metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="ring">/ring</a>: every member of every ring, oldest heartbeat first</li>
<li><a href="ring.json">/ring.json</a>: the same as JSON</li>
<li><a href="-/healthy">/-/healthy</a> and <a href="-/ready">/-/ready</a></li>
</ul></body></html>
"""


def _accepts_gzip(request: web.Request) -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "").lower()


# Bodies are written in slices of the cached bytes: no per-request copy of a
# large exposition, and at most a slice buffered per slow client.
_WRITE_CHUNK = 1024 * 1024


async def _send_parts(request: web.Request, parts: tuple[bytes, ...],
                      headers: dict[str, str]) -> web.StreamResponse:
    response = web.StreamResponse(headers=headers)
    response.content_length = sum(len(part) for part in parts)
    await response.prepare(request)
    if request.method == "HEAD":
        await response.write_eof()
        return response
    for part in parts:
        view = memoryview(part)
        for start in range(0, len(view), _WRITE_CHUNK):
            await response.write(view[start:start + _WRITE_CHUNK])
    await response.write_eof()
    return response


async def _sendfile_then(request: web.Request, file: BinaryIO, size: int, tail: bytes,
                         headers: dict[str, str]) -> web.StreamResponse | None:
    """`size` bytes of `file` by the kernel's sendfile, then `tail`; None (nothing
    sent) where sendfile cannot be used (TLS, or not supported here)."""
    transport = request.transport
    if (request.method == "HEAD" or transport is None
            or transport.get_extra_info("sslcontext") is not None):
        return None
    response = web.StreamResponse(headers=headers)
    response.content_length = size + len(tail)
    await response.prepare(request)
    try:
        await asyncio.get_running_loop().sendfile(transport, file, 0, size, fallback=False)
    except asyncio.SendfileNotAvailableError:
        # Raised before a byte is sent: send the cached bytes the usual way.
        view = memoryview(_read_all(file, size))
        for start in range(0, size, _WRITE_CHUNK):
            await response.write(view[start:start + _WRITE_CHUNK])
    if tail:
        await response.write(tail)
    await response.write_eof()
    return response


def _read_all(file: BinaryIO, size: int) -> bytes:
    return os.pread(file.fileno(), size, 0)


async def metrics(request: web.Request) -> web.StreamResponse:
    exporter = request.app[EXPORTER_KEY]
    exposition = exporter.exposition()
    zipped = _accepts_gzip(request)
    own = exporter.self_metrics(gzipped=zipped)
    if zipped:
        # Concatenated gzip members are one valid gzip stream (RFC 1952); the
        # large part is compressed once per scan.
        headers = {"Content-Encoding": "gzip", "Content-Type": CONTENT_TYPE}
    else:
        headers = {"Content-Type": CONTENT_TYPE}
    if exposition is None:
        return await _send_parts(request, (own,), headers)
    parts = (exposition.gzipped(),) if zipped else exposition.parts
    # The exposition is written to a file once per scan; each scrape is then
    # a sendfile, as cheap as a static file of the same size.
    sent = await _sendfile_then(request, exposition.file(zipped), sum(map(len, parts)), own,
                                headers)
    if sent is not None:
        return sent
    return await _send_parts(request, (*parts, own), headers)


async def healthy(request: web.Request) -> web.Response:
    if request.app[EXPORTER_KEY].healthy():
        return web.Response(text="Healthy.\n")
    return web.Response(status=503, text="Unhealthy: no scan has finished for too long.\n")


async def ready(request: web.Request) -> web.Response:
    if request.app[EXPORTER_KEY].ready:
        return web.Response(text="Ready.\n")
    return web.Response(status=503, text="Not ready: the first scan has not finished.\n")


async def ring_json(request: web.Request) -> web.Response:
    exposition = request.app[EXPORTER_KEY].exposition()
    if exposition is None:
        return web.json_response({"scanned_at": None, "tables": []}, status=503)
    body = exposition.cached("ring.json", lambda: orjson.dumps(
        snapshot_json(exposition.snapshot, exposition.fresh_tables)))
    return web.Response(body=body, content_type="application/json")


async def ring_page(request: web.Request) -> web.Response:
    exporter = request.app[EXPORTER_KEY]
    exposition = exporter.exposition()
    page = ringpage.render_page(exposition.snapshot if exposition else None,
                                exposition.fresh_tables if exposition else frozenset(),
                                exporter.clock(),
                                snapshot_max_age=exporter.config.snapshot_max_age,
                                cache=exposition.cached if exposition else None)
    return web.Response(text=page, content_type="text/html",
                        status=200 if exposition else 503)


async def landing(request: web.Request) -> web.Response:
    tables = ", ".join(html.escape(t) for t in request.app[EXPORTER_KEY].config.tables)
    return web.Response(text=_LANDING.format(version=__version__, tables=tables),
                        content_type="text/html")


def _auth_middleware(auth: BasicAuth) -> Callable:
    @web.middleware
    async def middleware(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(encoded, validate=True).decode(
                    ).partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = password = ""
            if user and auth.check(user, password):
                return await handler(request)
        return web.Response(status=401, text="Unauthorized\n",
                            headers={"WWW-Authenticate": 'Basic realm="ringwatch"'})

    return middleware


def make_app(exporter: Exporter, basic_auth: BasicAuth | None = None) -> web.Application:
    middlewares = [_auth_middleware(basic_auth)] if basic_auth else []
    app = web.Application(middlewares=middlewares, client_max_size=64 * 1024)
    app[EXPORTER_KEY] = exporter
    app.router.add_get("/", landing)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_get("/ring", ring_page)
    app.router.add_get("/ring.json", ring_json)
    return app
