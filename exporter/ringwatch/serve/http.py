"""HTTP endpoints. Every handler reads prepared state; none does DynamoDB I/O.

Every response carries `X-Content-Type-Options: nosniff` and the web config's
`http_server_config.headers`; `/ring` has a Content-Security-Policy that allows
no script. A response that cannot be written within RESPONSE_WRITE_TIMEOUT
(a client that does not read) is dropped: its connection is aborted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import html
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from ringwatch import __version__
from ringwatch.render import ringpage
from ringwatch.render.exposition import CONTENT_TYPE
from ringwatch.render.ringjson import snapshot_json
from ringwatch.serve.basicauth import AuthBusy, BasicAuth
from ringwatch.serve.scanloop import MetricsPage, ScanLoop
from ringwatch.serve.tls import peer_sans

SCAN_LOOP_KEY = web.AppKey("scan_loop", ScanLoop)
# Seconds a response may take to be written, headers to last byte; a client that
# reads slower than that loses its connection (it would otherwise hold a socket
# and a buffer for ever). Longer than any sane scrape_timeout of a big ring, the
# same as the idle timeout a client has to send its request.
RESPONSE_WRITE_TIMEOUT = 30.0
# /ring is plain HTML and CSS: no script, no plugin, no form, no framing.
RING_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

_LANDING = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ringwatch</title></head>
<body><h1>ringwatch {version}</h1>
<p>Watches the Cortex ring in DynamoDB table(s): {tables}.</p>
<ul>
<li><a href="{metrics_link}">{metrics_path}</a>: Prometheus metrics</li>
<li><a href="ring">/ring</a>: every member of every ring, oldest heartbeat first</li>
<li><a href="ring.json">/ring.json</a>: the same as JSON</li>
<li><a href="-/healthy">/-/healthy</a> and <a href="-/ready">/-/ready</a></li>
</ul></body></html>
"""


def _weighted(header: str) -> Iterator[tuple[str, float]]:
    """(token, q) of each element of an Accept-style header, token lower-cased; a q that
    does not parse counts as 0 (refused)."""
    for item in header.split(","):
        token, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        yield token.lower(), q


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (RFC 9110 q-values: q=0 refuses)."""
    gzip_q: float | None = None
    any_q: float | None = None
    for coding, q in _weighted(accept_encoding):
        if coding in ("gzip", "x-gzip"):
            gzip_q = max(gzip_q or 0.0, q)
        elif coding == "*":
            any_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return any_q is not None and any_q > 0


def _accepts_gzip(request: web.Request) -> bool:
    return accepts_gzip(request.headers.get("Accept-Encoding", ""))


OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _wants_openmetrics(accept: str) -> bool:
    """True if the Accept header prefers OpenMetrics (q > 0, no lower than text/plain's)."""
    best = {"openmetrics": 0.0, "text": 0.0}
    for media, q in _weighted(accept):
        kind = {"application/openmetrics-text": "openmetrics", "text/plain": "text"}.get(media)
        if kind:
            best[kind] = max(best[kind], q)
    return best["openmetrics"] > 0 and best["openmetrics"] >= best["text"]


# Bodies are written in slices of the cached bytes: no per-request copy of a
# large exposition, and at most a slice buffered per slow client.
_WRITE_CHUNK = 64 * 1024


def _drop(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER 0: close with a reset now; a plain close would queue the FIN
        # behind the data the client does not read, and the socket would linger.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _write_chunks(response: web.StreamResponse, data: bytes) -> None:
    """`data` written _WRITE_CHUNK bytes at a time."""
    view = memoryview(data)
    for start in range(0, len(view), _WRITE_CHUNK):
        await response.write(view[start : start + _WRITE_CHUNK])


@contextlib.asynccontextmanager
async def _write_deadline(request: web.Request) -> AsyncIterator[None]:
    """The response's writing, cut at RESPONSE_WRITE_TIMEOUT by dropping the connection;
    a client that went away (or was dropped) ends it quietly."""
    try:
        async with asyncio.timeout(RESPONSE_WRITE_TIMEOUT):
            yield
    except TimeoutError:
        _drop(request)
    except ConnectionError:
        pass  # nothing left to write


async def _send_parts(
    request: web.Request, parts: tuple[bytes, ...], headers: dict[str, str]
) -> web.StreamResponse:
    """`parts` as one body with its Content-Length (headers only for HEAD)."""
    return await _send_page(request, MetricsPage(parts, b"", None), headers)


async def _send_page(
    request: web.Request, page: MetricsPage, headers: dict[str, str]
) -> web.StreamResponse:
    """A page as one body with its Content-Length (headers only for HEAD): its head by
    the kernel's sendfile where it is in a file and the transport allows (not TLS),
    else written; then its tail."""
    response = web.StreamResponse(headers=headers)
    response.content_length = page.size
    async with _write_deadline(request):
        await response.prepare(request)
        if request.method != "HEAD":
            transport = request.transport
            sent = False
            # Not through TLS: asyncio has no sendfile for it.
            if (
                page.head_file is not None
                and transport is not None
                and transport.get_extra_info("sslcontext") is None
            ):
                # Raised before a byte is sent, if it is.
                with contextlib.suppress(asyncio.SendfileNotAvailableError):
                    # count None: to the end of the file, which may be empty.
                    await asyncio.get_running_loop().sendfile(
                        transport, page.head_file, 0, None, fallback=False
                    )
                    sent = True
            if not sent:
                for part in page.head:
                    await _write_chunks(response, part)
            await _write_chunks(response, page.tail)
        await response.write_eof()
    return response


async def metrics(request: web.Request) -> web.StreamResponse:
    """`/metrics`: the page the scan loop made for this format, no I/O."""
    openmetrics = _wants_openmetrics(request.headers.get("Accept", ""))
    zipped = _accepts_gzip(request)
    headers = {"Content-Type": OPENMETRICS_CONTENT_TYPE if openmetrics else CONTENT_TYPE}
    if zipped:
        headers["Content-Encoding"] = "gzip"
    page = request.app[SCAN_LOOP_KEY].metrics_page(openmetrics, zipped)
    return await _send_page(request, page, headers)


async def healthy(request: web.Request) -> web.Response:
    """`/-/healthy`: 200 while the scan loop is alive, else 503."""
    if request.app[SCAN_LOOP_KEY].healthy():
        return web.Response(text="Healthy.\n")
    return web.Response(status=503, text="Unhealthy: no scan has finished for too long.\n")


async def ready(request: web.Request) -> web.Response:
    """`/-/ready`: 200 once every table was scanned once, else 503."""
    if request.app[SCAN_LOOP_KEY].ready:
        return web.Response(text="Ready.\n")
    return web.Response(status=503, text="Not ready: the first scan has not finished.\n")


async def ring_json(request: web.Request) -> web.StreamResponse:
    """`/ring.json`: the snapshot in the JSON shape `ringwatch scan -o json` shares."""
    exposition = request.app[SCAN_LOOP_KEY].exposition()
    if exposition is None:
        return web.json_response({"scanned_at": None, "tables": []}, status=503)
    body = exposition.cached(
        "ring.json",
        lambda: orjson.dumps(snapshot_json(exposition.snapshot, exposition.fresh_tables)),
    )
    return await _send_parts(request, (body,), {"Content-Type": "application/json"})


async def ring_page(request: web.Request) -> web.StreamResponse:
    """`/ring`: the snapshot as an HTML page with no JavaScript."""
    scan_loop = request.app[SCAN_LOOP_KEY]
    exposition = scan_loop.exposition()
    page = ringpage.render_page(
        exposition.snapshot if exposition else None,
        exposition.fresh_tables if exposition else frozenset(),
        scan_loop.clock(),
        snapshot_max_age=scan_loop.config.snapshot_max_age,
        metrics_path=scan_loop.config.web_telemetry_path,
        cache=exposition.cached if exposition else None,
    )
    headers = {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": RING_CSP}
    if exposition is None:
        return web.Response(text=page, status=503, headers=headers)
    return await _send_parts(request, (page.encode(),), headers)


async def landing(request: web.Request) -> web.Response:
    """`/`: links to the endpoints."""
    config = request.app[SCAN_LOOP_KEY].config
    tables = ", ".join(html.escape(t) for t in config.tables)
    path = html.escape(config.web_telemetry_path)
    return web.Response(
        text=_LANDING.format(
            version=__version__, tables=tables, metrics_path=path, metrics_link=path.lstrip("/")
        ),
        content_type="text/html",
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _bounded_write(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Write a response the handler returned unwritten within RESPONSE_WRITE_TIMEOUT."""
    response = await handler(request)
    if not response.prepared:
        async with _write_deadline(request):
            await response.prepare(request)
            await response.write_eof()
    return response


def _auth_middleware(auth: BasicAuth) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = password = ""
            try:
                if user and await auth.check(user, password):
                    return await handler(request)
            except AuthBusy:
                return web.Response(
                    status=429,
                    text="Too many authentication attempts\n",
                    headers={"Retry-After": "1"},
                )
        return web.Response(
            status=401,
            text="Unauthorized\n",
            headers={"WWW-Authenticate": 'Basic realm="ringwatch"'},
        )

    return middleware


def _allowed_sans_middleware(allowed: frozenset[str]) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        cert = transport.get_extra_info("peercert") if transport is not None else None
        if peer_sans(cert) & allowed:
            return await handler(request)
        # exporter-toolkit refuses such a client in the handshake; this is as close
        # as Python's ssl allows: the connection ends before any answer.
        _drop(request)
        return web.Response(status=403)

    return middleware


def make_app(
    scan_loop: ScanLoop,
    basic_auth: BasicAuth | None = None,
    *,
    headers: dict[str, str] | None = None,
    allowed_sans: frozenset[str] | None = None,
) -> web.Application:
    """The aiohttp application: endpoints, auth, headers and bounded writes."""
    middlewares: list[Middleware] = [_bounded_write]
    if allowed_sans is not None:
        middlewares.append(_allowed_sans_middleware(allowed_sans))
    if basic_auth:
        middlewares.append(_auth_middleware(basic_auth))
    app = web.Application(middlewares=middlewares, client_max_size=64 * 1024)
    extra_headers = {"X-Content-Type-Options": "nosniff", **(headers or {})}

    async def add_headers(_request: web.Request, response: web.StreamResponse) -> None:
        for name, value in extra_headers.items():
            response.headers.setdefault(name, value)

    app.on_response_prepare.append(add_headers)
    app[SCAN_LOOP_KEY] = scan_loop
    app.router.add_get("/", landing)
    app.router.add_get(scan_loop.config.web_telemetry_path, metrics)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_get("/ring", ring_page)
    app.router.add_get("/ring.json", ring_json)
    return app
