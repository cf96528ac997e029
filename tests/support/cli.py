"""The real `ringwatch` command in a subprocess, with no RINGWATCH_ variable of the test run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class CliRun:
    """One finished `ringwatch` run: its exit status, output and wall time."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float


def serve_args(endpoint_url: str, *extra: str, table: str = "t") -> list[str]:
    """`serve` one table of the DynamoDB at `endpoint_url`, on a free port of 127.0.0.1."""
    return ["serve", *table_args(endpoint_url, *extra, table=table)]


def table_args(endpoint_url: str, *extra: str, table: str = "t") -> list[str]:
    """The flags of `serve_args`, without the subcommand (as `load_config` takes them)."""
    return [
        "--dynamodb.table",
        table,
        "--dynamodb.region",
        "us-east-1",
        "--dynamodb.endpoint-url",
        endpoint_url,
        "--web.listen-address",
        "127.0.0.1:0",
        *extra,
    ]


def _environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The test run's environment minus RINGWATCH_*, plus `env`."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RINGWATCH_")}
    full_env.update(env or {})
    return full_env


@dataclass(frozen=True)
class RunningRingwatch:
    """A `ringwatch` process from `start_ringwatch`: its stderr lines (read on as they
    come) and the http(s)://host:port of each address it announced listening on."""

    proc: subprocess.Popen[str]
    lines: list[str]
    addresses: list[str]

    @property
    def port(self) -> int:
        """The port of the first address."""
        return int(self.addresses[0].rsplit(":", 1)[1])


def start_ringwatch(*args: str, listening: int = 1, timeout: float = 20) -> RunningRingwatch:
    """`python -m ringwatch ARGS` started, once it announced `listening` addresses (killed,
    and AssertionError with its output, if it did not within `timeout` seconds)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ringwatch", *args],
        stderr=subprocess.PIPE,
        text=True,
        env=_environment({"PYTHONUNBUFFERED": "1"}),
    )
    lines: list[str] = []
    addresses: list[str] = []
    heard = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            found = re.search(r"msg=listening address=(https?://\S+)", line)
            if found:
                addresses.append(found.group(1))
                if len(addresses) == listening:
                    heard.set()

    threading.Thread(target=read, daemon=True).start()
    if not heard.wait(timeout):
        proc.kill()
        raise AssertionError(
            f"listening on {addresses}, not {listening} addresses: " + "".join(lines)
        )
    return RunningRingwatch(proc, lines, addresses)


def run_ringwatch(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> CliRun:
    """`python -m ringwatch ARGS` with the test run's environment minus RINGWATCH_*, plus `env`."""
    full_env = _environment(env)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "ringwatch", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    return CliRun(result.returncode, result.stdout, result.stderr, time.monotonic() - started)


def assert_one_line_exit_2(result: CliRun | subprocess.CompletedProcess, named: str) -> None:
    """Exit 2, one stderr line `ringwatch: error: ...` that contains `named`, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-800:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-800:]
    assert lines[0].startswith("ringwatch: error: ")
    assert named in lines[0], lines[0][:500]
