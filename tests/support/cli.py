"""The real `ringwatch` command in a subprocess, with no RINGWATCH_ variable of the test run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class CliRun:
    """One finished `ringwatch` run: its exit status, output and wall time."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_ringwatch(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> CliRun:
    """`python -m ringwatch ARGS` with the test run's environment minus RINGWATCH_*, plus `env`."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RINGWATCH_")}
    full_env.update(env or {})
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
