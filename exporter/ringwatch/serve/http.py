"""HTTP endpoints. Every handler reads prepared state; none does DynamoDB I/O."""

from __future__ import annotations

import base64
import binascii
import gzip
import html
from collections.abc import Awaitable, Callable

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


OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _wants_openmetrics(accept: str) -> bool:
    """True if the Accept header prefers OpenMetrics (q > 0, no lower than text/plain's)."""
    best = {"openmetrics": 0.0, "text": 0.0}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        kind = {"application/openmetrics-text": "openmetrics",
                "text/plain": "text"}.get(media.lower())
        if kind:
            best[kind] = max(best[kind], q)
    return best["openmetrics"] > 0 and best["openmetrics"] >= best["text"]


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


async def metrics(request: web.Request) -> web.StreamResponse:
    exporter = request.app[EXPORTER_KEY]
    exposition = exporter.exposition()
    openmetrics = _wants_openmetrics(request.headers.get("Accept", ""))
    own = exporter.self_metrics(openmetrics)
    content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else CONTENT_TYPE
    if _accepts_gzip(request):
        # Concatenated gzip members are one valid gzip stream (RFC 1952); the
        # large part is compressed once per scan.
        big = b""
        if exposition:
            big = exposition.openmetrics_gzipped() if openmetrics else exposition.gzipped()
        parts = (big, gzip.compress(own, compresslevel=1))
        headers = {"Content-Encoding": "gzip", "Content-Type": content_type}
    else:
        body = b""
        if exposition:
            body = exposition.openmetrics() if openmetrics else exposition.body
        parts = (body, own)
        headers = {"Content-Type": content_type}
    return await _send_parts(request, parts, headers)


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
