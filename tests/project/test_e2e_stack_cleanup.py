"""`e2e/stack.py` for a person: Ctrl-C stops it and leaves no temporary folder behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from support import REPO


def test_ctrl_c_while_starting_removes_the_temporary_workdir(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "e2e" / "stack.py")],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "starting the stack" in proc.stdout.readline()
        deadline = time.monotonic() + 30
        workdirs: list[Path] = []
        while time.monotonic() < deadline:
            workdirs = [p for p in tmp_path.glob("ringwatch-e2e-*") if any(p.iterdir())]
            if workdirs:
                break
            time.sleep(0.1)
        assert workdirs, "the stack wrote nothing into a temporary workdir"
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"removed {workdirs[0]}" in output, output
    assert not list(tmp_path.glob("ringwatch-e2e-*")), output
