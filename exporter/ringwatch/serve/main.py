"""`ringwatch serve`: wire the client, the scan loop and the HTTP server together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ringwatch.config import Config
from ringwatch.logs import log
from ringwatch.serve.http import make_app
from ringwatch.serve.scanloop import ScanLoop
from ringwatch.serve.webconfig import load_web_config

SHUTDOWN_BUDGET = 3.0  # seconds; the contract (docs/contract.md) allows 5 from SIGTERM to exit
# A connection must complete its request (headers included) this long after it
# opens or goes idle, or it is closed: slow clients cannot hold sockets forever.
CLIENT_IDLE_TIMEOUT = 30.0
# Exit status when the scan loop ended without being asked to: a watchdog that no
# longer scans must not look like one that was stopped.
EXIT_SCAN_LOOP_ENDED = 1


class _DropClientErrors(logging.Filter):
    """aiohttp logs a traceback for every malformed request; that is the client's
    fault (it gets a 400), and a flood of them must not flood the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, HttpProcessingError)


async def serve(
    config: Config,
    *,
    stop: asyncio.Event | None = None,
    clock: Callable[[], float] = time.time,
    on_listening: Callable[[str, int], None] | None = None,
    scan_loop: ScanLoop | None = None,
) -> int:
    """`ringwatch serve`: the scan loop and the HTTP server until `stop` or SIGTERM/SIGINT
    (exit status 0), or until the scan loop ends on its own (EXIT_SCAN_LOOP_ENDED)."""
    web_config = load_web_config(config.web_config_file)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)

    scan_loop = scan_loop or ScanLoop(config, clock=clock)
    exit_code = 0
    stack = AsyncExitStack()
    try:
        await scan_loop.open(stack)
        server_log = logging.getLogger("aiohttp.server")
        if not any(isinstance(f, _DropClientErrors) for f in server_log.filters):
            server_log.addFilter(_DropClientErrors())
        app = make_app(
            scan_loop,
            web_config.basic_auth,
            headers=web_config.headers,
            allowed_sans=web_config.allowed_sans,
        )
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=1.0,
            keepalive_timeout=CLIENT_IDLE_TIMEOUT,
        )
        await runner.setup()
        bound: list[tuple[str, int]] = []  # every address bound before any is announced
        for host, port in config.listen_host_ports:
            site = web.TCPSite(
                runner,
                host=None if host == "0.0.0.0" else host,
                port=port,
                ssl_context=web_config.ssl_context,
                backlog=512,
            )
            await site.start()
            server = site._server
            sockets = server.sockets if isinstance(server, asyncio.Server) else []
            bound.append((host, sockets[0].getsockname()[1] if sockets else port))
        scheme = "https" if web_config.ssl_context else "http"
        for host, bound_port in bound:
            log(
                logging.INFO,
                "listening",
                address=f"{scheme}://{host}:{bound_port}",
                tables=",".join(config.tables),
                scan_interval=config.scan_interval,
            )
            if on_listening:
                on_listening(host, bound_port)

        scan_task = asyncio.create_task(scan_loop.run(stop), name="ringwatch-scan-loop")
        stop_wait = asyncio.create_task(stop.wait())
        await asyncio.wait({scan_task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if scan_loop.ended is not None:
            # /-/healthy answers 503 from here on, until the process is gone.
            log(logging.ERROR, "scan loop ended; exiting", error=scan_loop.ended)
            exit_code = EXIT_SCAN_LOOP_ENDED
        else:
            log(logging.INFO, "shutting down")
        # In-flight DynamoDB requests are abandoned, not awaited.
        scan_task.cancel()
        stop_wait.cancel()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(SHUTDOWN_BUDGET):
                await asyncio.gather(scan_task, return_exceptions=True)
                await runner.cleanup()
    finally:
        if web_config.basic_auth:
            web_config.basic_auth.close()
        # Closing the client must not hang past the budget either.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await stack.aclose()
    return exit_code
