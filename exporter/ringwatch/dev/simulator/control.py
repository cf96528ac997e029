"""The simulator's control endpoint: a small HTTP server on loopback.

GET  /members                      every simulated member, as JSON
GET  /members/{member}[?ring=R]    one member
POST /members/{member}/{action}    action: freeze, thaw, leave, kill, restart, join-stuck, add;
                                   parameters (ring, duration, zone, tokens, join_stuck) as query
                                   parameters or a JSON object body
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ringwatch.dev.simulator.actions import ActionError
from ringwatch.units import parse_host_port

log = logging.getLogger("ringwatch.simulator")


def parse_listen_address(address: str) -> tuple[str, int]:
    """`host:port` on a loopback address (`:port` means 127.0.0.1); raises ValueError
    otherwise."""
    if address.startswith(":"):
        address = "127.0.0.1" + address
    host, port = parse_host_port(address)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ValueError(f"cannot resolve {host!r}: {err}") from None
    if not infos or not all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos):
        raise ValueError(f"the control endpoint listens on loopback only, not {host!r}")
    return host, port


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    simulator: Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "ringwatch-simulate"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("control: " + format, *args)

    def _send(self, status: int, body: Any) -> None:
        payload = json.dumps(body, indent=1).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _route(self) -> tuple[list[str], dict[str, str]]:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/") if p]
        return parts, dict(parse_qsl(url.query))

    def do_GET(self) -> None:
        parts, query = self._route()
        sim = self.server.simulator
        try:
            if parts == ["members"]:
                self._send(200, sim.members())
            elif len(parts) == 2 and parts[0] == "members":
                self._send(200, sim.member(parts[1], query.get("ring")))
            else:
                self._send(404, {"error": "not found"})
        except ActionError as err:
            self._send(err.status, {"error": str(err)})

    def do_POST(self) -> None:
        parts, params = self._route()
        if len(parts) != 3 or parts[0] != "members":
            self._send(404, {"error": "not found: POST /members/{member}/{action}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                self._send(400, {"error": "the body must be a JSON object"})
                return
            params.update(body)
        ring = params.pop("ring", None)
        try:
            self._send(200, self.server.simulator.act(parts[1], parts[2], ring, **params))
        except ActionError as err:
            self._send(err.status, {"error": str(err)})


class ControlServer:
    """The simulator's control endpoint on loopback: POST an action for a member."""

    def __init__(self, simulator: Any, address: str) -> None:
        host, port = parse_listen_address(address)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_cls = type("_BoundServer", (_Server,), {"address_family": family})
        self._server = server_cls((host, port), _Handler)
        self._server.simulator = simulator
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.05,),
            name="ringwatch-simulate-control",
            daemon=True,
        )

    @property
    def url(self) -> str:
        """The endpoint's base URL."""
        host, port = self._server.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Start serving in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and join the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2.0)
