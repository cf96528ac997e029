"""The whole chain on loopback: moto's DynamoDB <- `ringwatch simulate`, moto <- proxy <-
`ringwatch serve` <- Prometheus (the mixin, rendered with e2e-sized thresholds) -> Alertmanager
-> a webhook receiver in this process.

    .venv/bin/python e2e/stack.py        # bring it up for a person, print the URLs, Ctrl-C stops

The e2e tests (tests/test_e2e.py) start the very same stack through `Stack`.

Every port is picked free on 127.0.0.1. The proxy sits between ringwatch and moto only (the
simulator writes to moto directly), so `stack.proxy.blackhole = True` blinds the exporter while the
ring lives on.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
TABLE = "cortex-ring"
RING = "collectors/ring"
JOB = "ringwatch"
PROMETHEUS = os.environ.get("RINGWATCH_E2E_PROMETHEUS", "/usr/bin/prometheus")
ALERTMANAGER = os.environ.get("RINGWATCH_E2E_ALERTMANAGER", "/usr/bin/prometheus-alertmanager")


@dataclass(frozen=True)
class Timings:
    """Wall-clock cadences of the stack, in seconds (thresholds are in MIXIN_CONFIG)."""

    members: int = 12
    zones: int = 3
    heartbeat_period: float = 1.0
    scan_interval: float = 1.0
    scrape_interval: float = 1.0
    evaluation_interval: float = 1.0
    group_wait: float = 1.0
    group_interval: float = 1.0
    # A second ring (store-gateways) with its own heartbeat period; 0 members: none.
    slow_members: int = 0
    slow_heartbeat_period: float = 15.0

    def pipeline(self) -> float:
        """Worst-case lag from a condition becoming true in DynamoDB to the webhook, `for:`
        aside: the next scan, the next scrape, the recording rule's evaluation, the alert
        rule's evaluation, the evaluation that ends its `for:`, and Alertmanager's group_wait."""
        return (
            self.scan_interval
            + self.scrape_interval
            + 3 * self.evaluation_interval
            + self.group_wait
        )


TIMINGS = Timings()
# ringwatch's stale flags for the e2e stack: every member stale after 5s (its 1s beats give
# min(max(4 x 1s, floor), max(cap, 2 x 1s)) = 5s). The mixin reads the threshold ringwatch
# publishes, so these are the only place it is set.
E2E_STALE_FLAGS = ("--ring.stale-after", "5s", "--ring.stale-floor", "5s")
E2E_STALE_AFTER = 5.0
SLOW_RING = "collectors/store-gateway"
SLOW_PREFIX = "store-gateway-"

# The mixin's `_config`, scaled down so that every alert fires within seconds. Deep-merged into
# mixin/config.libsonnet by mixin/build.py's render().
MIXIN_CONFIG: dict[str, Any] = {
    "ringwatchSelector": f'job="{JOB}"',
    "ringDefaults": {
        "heartbeatStaleFor": "2s",
        # Later than the stale alert, so that the shipped inhibition (stale over CAS) is exercised.
        "casStalledAfter": "8s",
        "casStalledFor": "2s",
        # Must stay above how long scenario 1 keeps its member frozen (stale + CAS alerts).
        "ghostAfter": "25s",
        "ghostFor": "2s",
        "joiningStuckFor": "8s",
        "pendingStuckFor": "10s",
        # A clean restart stays LEAVING for RESTART_LEAVING seconds: far below this.
        "leavingStuckFor": "30s",
        "rolloutStaleFor": "10s",
        "unhealthyFor": "2s",
    },
    # A blind exporter's member series vanish within this (the default 1m rides out a failed scan).
    "gapTolerance": "3s",
    "versionMovingWindow": "10s",
    "scanFailingAfter": "5s",
    "scanFailingFor": "2s",
    "downFor": "10s",
    "throttledWindow": "30s",
    "throttledFor": "10s",
    "decodeErrorsWindow": "30s",
    "decodeErrorsFor": "10s",
    "ingesterCASWindow": "30s",
    "ingesterCASFor": "10s",
}


def seconds(duration: str) -> float:
    from ringwatch.config import parse_duration

    return parse_duration(duration)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2
) -> Any:
    """Poll `predicate` until it returns something truthy; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError, KeyError) as err:  # not up yet
            last_error = err
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_error})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}{extra}")
        time.sleep(interval)


def http_json(url: str, method: str = "GET", data: Any = None, timeout: float = 5.0) -> Any:
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/json"} if body else {}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def load_mixin_builder() -> Any:
    path = REPO / "mixin" / "build.py"
    spec = importlib.util.spec_from_file_location("ringwatch_mixin_build", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render_mixin(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The mixin rendered with the e2e `_config` (not a copy of its rules)."""
    return load_mixin_builder().render(MIXIN_CONFIG if config is None else config)


# --- the blind-able proxy between ringwatch and DynamoDB ---------------------------------------


class BlackholeProxy:
    """A TCP proxy in its own thread. With `blackhole` set it keeps accepting connections and
    reading requests, and forwards nothing either way: requests hang until the client gives up."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.blackhole = False
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BlackholeProxy:
        self._thread = threading.Thread(target=self._run, name="e2e-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error or not self.port:
            raise RuntimeError(f"proxy did not start: {self._error}")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as err:  # reported by start()
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                if self.blackhole:
                    continue
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
        )

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        if self._server is not None:
            loop.call_soon_threadsafe(self._server.close)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)


# --- the pager: a webhook receiver ------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """One alert of one webhook notification from Alertmanager."""

    received: float  # time.time() at arrival
    status: str  # firing | resolved
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str
    seq: int

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def member(self) -> str | None:
        return self.labels.get("member")

    def line(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.received))
        labels = ", ".join(
            f"{k}={v}" for k, v in sorted(self.labels.items()) if k not in ("alertname",)
        )
        return (
            f"{when}.{int(self.received * 1000) % 1000:03d} {self.status:8} "
            f"{self.alertname} {{{labels}}}"
        )


class WebhookReceiver:
    """Alertmanager's webhook receiver: records every alert of every notification.

    GET / answers the log as JSON (newest last); GET /log as text lines."""

    def __init__(self, echo: Callable[[Notification], None] | None = None) -> None:
        self.notifications: list[Notification] = []
        self.echo = echo
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.record(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                with receiver._cond:
                    notes = list(receiver.notifications)
                if self.path.startswith("/log"):
                    body = "".join(n.line() + "\n" for n in notes).encode()
                    ctype = "text/plain; charset=utf-8"
                else:
                    body = json.dumps([n.__dict__ for n in notes], indent=1).encode()
                    ctype = "application/json"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="e2e-webhook", daemon=True
        )
        self._thread.start()
        return self

    def record(self, payload: dict[str, Any]) -> None:
        now = time.time()
        with self._cond:
            for alert in payload.get("alerts", []):
                note = Notification(
                    received=now,
                    status=alert.get("status", ""),
                    labels=dict(alert.get("labels", {})),
                    annotations=dict(alert.get("annotations", {})),
                    starts_at=alert.get("startsAt", ""),
                    ends_at=alert.get("endsAt", ""),
                    seq=len(self.notifications),
                )
                self.notifications.append(note)
                if self.echo:
                    self.echo(note)
            self._cond.notify_all()

    def since(self, mark: int) -> list[Notification]:
        with self._cond:
            return self.notifications[mark:]

    def mark(self) -> int:
        with self._cond:
            return len(self.notifications)

    def wait_for(
        self, predicate: Callable[[Notification], bool], mark: int, timeout: float, what: str
    ) -> Notification:
        """The first notification from `mark` on that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for note in self.notifications[mark:]:
                    if predicate(note):
                        return note
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no notification {what} within {timeout:g}s")
                self._cond.wait(left)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# --- subprocesses -----------------------------------------------------------------------------


class Proc:
    """A subprocess whose stdout and stderr go to a log file."""

    def __init__(
        self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float) -> re.Match[str]:
        def find() -> re.Match[str] | None:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}"
                )
            return re.search(pattern, self.log_text())

        return wait_until(find, timeout, f"{self.name} to log /{pattern}/")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        PYTHONUNBUFFERED="1",
    )
    return env


# --- the stack --------------------------------------------------------------------------------


@dataclass
class Stack:
    """The whole chain. `start()` returns once every member is ACTIVE, Prometheus scrapes
    ringwatch and has loaded the rules, and Alertmanager is ready; `stop()` ends everything."""

    workdir: Path
    timings: Timings = TIMINGS
    mixin_config: dict[str, Any] = field(default_factory=lambda: MIXIN_CONFIG)
    echo: Callable[[Notification], None] | None = None
    seed: int = 5
    # moto keeps tables per process: a test process gives a name no other test uses.
    table: str = TABLE
    # ringwatch's --ring.stale-* flags (none: its defaults)
    stale_flags: tuple[str, ...] = E2E_STALE_FLAGS

    def __post_init__(self) -> None:
        self.procs: dict[str, Proc] = {}
        self.dynamo: Any = None
        self.proxy: BlackholeProxy | None = None
        self.webhook = WebhookReceiver(self.echo)
        self.rendered: dict[str, Any] = {}
        self.urls: dict[str, str] = {}

    # --- lifecycle ---

    def start(self, timeout: float = 90.0) -> Stack:
        from ringwatch.dev.localdynamo import LocalDynamo, create_ring_table

        for binary in (PROMETHEUS, ALERTMANAGER):
            if not shutil.which(binary):
                raise RuntimeError(
                    f"{binary} not found: apt-get install prometheus prometheus-alertmanager"
                )
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = _child_env()
        os.environ.update(
            {
                k: env[k]
                for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
                if k not in os.environ
            }
        )

        self.dynamo = LocalDynamo().start()
        self._drop_table()
        create_ring_table(self.dynamo.endpoint_url, self.table)
        self.proxy = BlackholeProxy("127.0.0.1", self.dynamo.port).start()
        self.webhook.start()
        t = self.timings

        self.urls["simulator"] = self._simulate(
            "simulate", env, RING, t.members, t.zones, t.heartbeat_period
        )
        if t.slow_members:
            self.urls["simulator-slow"] = self._simulate(
                "simulate-slow",
                env,
                SLOW_RING,
                t.slow_members,
                min(t.zones, t.slow_members),
                t.slow_heartbeat_period,
                "--member.prefix",
                SLOW_PREFIX,
            )

        rw = self._spawn(
            "ringwatch",
            [
                sys.executable,
                "-m",
                "ringwatch",
                "serve",
                "--dynamodb.table",
                self.table,
                "--dynamodb.region",
                "us-east-1",
                "--dynamodb.endpoint-url",
                self.proxy.url,
                "--scan.interval",
                f"{t.scan_interval:g}s",
                "--scan.timeout",
                f"{round(800 * t.scan_interval)}ms",
                "--dynamodb.request-timeout",
                f"{round(400 * t.scan_interval)}ms",
                "--dynamodb.connect-timeout",
                f"{round(400 * t.scan_interval)}ms",
                *self.stale_flags,
                "--web.listen-address",
                "127.0.0.1:0",
            ],
            env,
        )
        self.urls["ringwatch"] = rw.wait_for_log(
            r"msg=listening address=(http://127\.0\.0\.1:\d+)", 30
        ).group(1)

        self.rendered = render_mixin(self.mixin_config)
        self._start_alertmanager()
        self._start_prometheus()

        wait_until(
            lambda: http_ok(self.urls["ringwatch"] + "/-/ready"), timeout, "ringwatch to be ready"
        )
        wait_until(self._all_members_active, timeout, "every simulated member to be ACTIVE")
        wait_until(
            lambda: http_ok(self.urls["alertmanager"] + "/-/ready"),
            timeout,
            "Alertmanager to be ready",
        )
        wait_until(
            lambda: http_ok(self.urls["prometheus"] + "/-/ready"), timeout, "Prometheus to be ready"
        )
        wait_until(
            self._prometheus_sees_the_ring,
            timeout,
            "Prometheus to scrape every member from ringwatch",
        )
        wait_until(self._alertmanager_discovered, timeout, "Prometheus to discover Alertmanager")
        return self

    def _simulate(
        self,
        name: str,
        env: dict[str, str],
        ring: str,
        members: int,
        zones: int,
        period: float,
        *extra: str,
    ) -> str:
        """Start `ringwatch simulate` writing one ring into the table; its control URL."""
        proc = self._spawn(
            name,
            [
                sys.executable,
                "-m",
                "ringwatch",
                "simulate",
                "--dynamodb.table",
                self.table,
                "--dynamodb.endpoint-url",
                self.dynamo.endpoint_url,
                "--ring.key",
                ring,
                "--members",
                str(members),
                "--zones",
                str(zones),
                *extra,
                "--heartbeat.period",
                f"{period:g}s",
                "--seed",
                str(self.seed),
                "--control.listen-address",
                "127.0.0.1:0",
            ],
            env,
        )
        return proc.wait_for_log(r"control endpoint: (http://127\.0\.0\.1:\d+)", 30).group(1)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, argv, self.workdir / f"{name}.log", env)
        self.procs[name] = proc
        return proc

    def _start_alertmanager(self) -> None:
        t = self.timings
        config = {
            "route": {
                "receiver": "webhook",
                "group_by": ["..."],  # every alert its own group: one notification each
                "group_wait": f"{t.group_wait:g}s",
                "group_interval": f"{t.group_interval:g}s",
                "repeat_interval": "12h",
            },
            "receivers": [
                {
                    "name": "webhook",
                    "webhook_configs": [
                        {"url": self.webhook.url, "send_resolved": True, "max_alerts": 0}
                    ],
                }
            ],
            # The mixin's own inhibition rules, as deploy/alertmanager uses them.
            **self.rendered["alertmanager_inhibit_rules"],
        }
        path = self.workdir / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        port = free_port()
        self.urls["alertmanager"] = f"http://127.0.0.1:{port}"
        (self.workdir / "alertmanager-data").mkdir(exist_ok=True)
        self._spawn(
            "alertmanager",
            [
                ALERTMANAGER,
                f"--config.file={path}",
                f"--storage.path={self.workdir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=info",
            ],
        )

    def _start_prometheus(self) -> None:
        t = self.timings
        rules = self.workdir / "prometheus_rules.yaml"
        alerts = self.workdir / "prometheus_alerts.yaml"
        rules.write_text(yaml.safe_dump(self.rendered["prometheus_rules"], sort_keys=False))
        alerts.write_text(yaml.safe_dump(self.rendered["prometheus_alerts"], sort_keys=False))
        ringwatch_target = self.urls["ringwatch"].removeprefix("http://")
        am_target = self.urls["alertmanager"].removeprefix("http://")
        config = {
            "global": {
                "scrape_interval": f"{t.scrape_interval:g}s",
                "scrape_timeout": f"{t.scrape_interval:g}s",
                "evaluation_interval": f"{t.evaluation_interval:g}s",
            },
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am_target]}]}]},
            "rule_files": [str(rules), str(alerts)],
            "scrape_configs": [
                {"job_name": JOB, "static_configs": [{"targets": [ringwatch_target]}]},
            ],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        port = free_port()
        self.urls["prometheus"] = f"http://127.0.0.1:{port}"
        self._spawn(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={path}",
                f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                "--log.level=info",
            ],
        )

    def stop(self) -> None:
        for name in ("prometheus", "alertmanager", "ringwatch", "simulate", "simulate-slow"):
            proc = self.procs.get(name)
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.stop()
        self.webhook.stop()
        if self.proxy is not None:
            self.proxy.stop()
        if self.dynamo is not None:
            with contextlib.suppress(Exception):
                self._drop_table()
            self.dynamo.stop()

    def _drop_table(self) -> None:
        import boto3

        client = boto3.client(
            "dynamodb", endpoint_url=self.dynamo.endpoint_url, region_name="us-east-1"
        )
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            client.delete_table(TableName=self.table)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def logs(self, tail: int = 4000) -> str:
        """The tail of every process' log, for a failure report."""
        parts = []
        for name, proc in self.procs.items():
            state = "running" if proc.alive() else f"exited {proc.proc.returncode}"
            parts.append(f"----- {name} ({state}) {proc.log_path} -----\n{proc.log_text()[-tail:]}")
        parts.append(
            "----- webhook -----\n" + "".join(n.line() + "\n" for n in self.webhook.since(0))
        )
        return "\n".join(parts)

    # --- the simulator ---

    def members(self) -> list[dict[str, Any]]:
        return http_json(self.urls["simulator"] + "/members")

    def member(self, name: str) -> dict[str, Any]:
        return http_json(self.urls["simulator"] + f"/members/{urllib.parse.quote(name)}")

    def act(self, name: str, action: str, **params: Any) -> dict[str, Any]:
        return http_json(
            self.urls["simulator"] + f"/members/{urllib.parse.quote(name)}/{action}",
            method="POST",
            data=params,
        )

    def _all_members_active(self) -> bool:
        members = self.members()
        return len(members) == self.timings.members and all(m["state"] == "ACTIVE" for m in members)

    # --- Prometheus and Alertmanager ---

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        out = http_json(self.urls["prometheus"] + "/api/v1/query?" + urllib.parse.urlencode(params))
        return out["data"]["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> dict[str, Any]:
        """The raw answer (status, data or error) of a range query."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        url = self.urls["prometheus"] + "/api/v1/query_range?" + urllib.parse.urlencode(params)
        try:
            return http_json(url, timeout=15)
        except urllib.error.HTTPError as err:
            return json.loads(err.read() or b"{}") or {"status": "error", "error": str(err)}

    def alertmanager_alerts(self) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds as firing (inhibited ones too), as its API lists them."""
        return http_json(self.urls["alertmanager"] + "/api/v2/alerts")

    def post_alerts(self, alerts: list[dict[str, str]]) -> None:
        """Hand alerts (label sets) to Alertmanager as Prometheus would."""
        http_json(
            self.urls["alertmanager"] + "/api/v2/alerts",
            method="POST",
            data=[{"labels": labels} for labels in alerts],
        )

    def prometheus_alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts as Prometheus sees them."""
        return http_json(self.urls["prometheus"] + "/api/v1/alerts")["data"]["alerts"]

    def loaded_rules(self) -> list[dict[str, Any]]:
        return http_json(self.urls["prometheus"] + "/api/v1/rules")["data"]["groups"]

    def _prometheus_sees_the_ring(self) -> bool:
        result = self.query(
            f'sum(ring:ringwatch_ring_members:max{{ring="{RING}", state="ACTIVE"}})'
        )
        return bool(result) and float(result[0]["value"][1]) == self.timings.members

    def _alertmanager_discovered(self) -> bool:
        data = http_json(self.urls["prometheus"] + "/api/v1/alertmanagers")["data"]
        return bool(data.get("activeAlertmanagers"))


# --- for a person -----------------------------------------------------------------------------


def _banner(stack: Stack) -> str:
    u = stack.urls
    t = stack.mixin_config["ringDefaults"]
    tm = stack.timings
    c = stack.mixin_config
    return f"""
ringwatch e2e stack: {tm.members} simulated ingesters in {tm.zones} zones heartbeating every
{tm.heartbeat_period:g}s into table {stack.table} (ring {RING}) on moto; ringwatch scans every
{tm.scan_interval:g}s; Prometheus scrapes and evaluates every {tm.scrape_interval:g}s with the mixin
rendered at e2e thresholds:
  heartbeat stale ({" ".join(stack.stale_flags) or "default stale flags"}) for \
{t["heartbeatStaleFor"]}, \
CAS stalled after {t["casStalledAfter"]} for {t["casStalledFor"]},
  ghost after {t["ghostAfter"]} for {t["ghostFor"]}, JOINING stuck for {t["joiningStuckFor"]}, \
scan failing after {c["scanFailingAfter"]} for {c["scanFailingFor"]}.

  Prometheus     {u["prometheus"]}/alerts   {u["prometheus"]}/rules   {u["prometheus"]}/graph
  Alertmanager   {u["alertmanager"]}
  ringwatch      {u["ringwatch"]}/ring   {u["ringwatch"]}/metrics   {u["ringwatch"]}/ring.json
  webhook log    {stack.webhook.url}log  (also printed below as notifications arrive)
  simulator      {u["simulator"]}/members
  DynamoDB       {stack.dynamo.endpoint_url}  (ringwatch reads it through {stack.proxy.url})

Try:
  curl -XPOST {u["simulator"]}/members/ingester-4/freeze      # stale + CAS stalled, then ghost
  curl -XPOST {u["simulator"]}/members/ingester-4/thaw
  curl -XPOST '{u["simulator"]}/members/ingester-5/restart?duration=3s'
  curl -XPOST {u["simulator"]}/members/ingester-6/kill         # a ghost
  curl -XPOST {u["simulator"]}/members/ingester-7/join-stuck   # rollout stalled
  type `blind` + Enter to blackhole DynamoDB for ringwatch, `see` + Enter to restore it

Files and logs in {stack.workdir}. Ctrl-C stops everything.
"""


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Run the e2e stack for a person to explore.")
    parser.add_argument(
        "--workdir",
        default=None,
        help="where configs, data and logs go "
        "(default: a fresh temporary directory, removed when the stack stops "
        "cleanly, kept after a failure for its logs)",
    )
    args = parser.parse_args(argv)
    temporary = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="ringwatch-e2e-"))
    failed = False

    def echo(note: Notification) -> None:
        print("webhook: " + note.line(), flush=True)

    stack = Stack(workdir, echo=echo)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("starting the stack ...", flush=True)
    try:
        stack.start()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        print(_banner(stack), flush=True)

        def commands() -> None:
            for line in sys.stdin:
                word = line.strip().lower()
                if word in ("blind", "see") and stack.proxy is not None:
                    stack.proxy.blackhole = word == "blind"
                    print(
                        f"proxy: DynamoDB {'blackholed' if word == 'blind' else 'reachable'} "
                        "for ringwatch",
                        flush=True,
                    )

        threading.Thread(target=commands, daemon=True).start()
        while not stop.wait(1.0):
            dead = [n for n, p in stack.procs.items() if not p.alive()]
            if dead:
                print(f"{', '.join(dead)} exited:\n{stack.logs()}", file=sys.stderr)
                failed = True
                return 1
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError) as err:
        print(f"e2e stack: {err}\n{stack.logs()}", file=sys.stderr)
        failed = True
        return 1
    finally:
        print("stopping ...", flush=True)
        # A second Ctrl-C while stopping must not leave the folder behind either.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
        if temporary and not failed:
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"removed {workdir}", flush=True)
        elif temporary:
            print(f"kept {workdir} for its logs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
