"""`ringwatch demo` from the command line: it serves a simulated ring, its banner's one-scan
command works as pasted, and it stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

from support.exposition import series


def test_demo_serves_a_simulated_ring_and_stops_on_ctrl_c() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ringwatch",
            "demo",
            "--web.listen-address",
            "127.0.0.1:0",
            "--heartbeat.period",
            "1s",
            "--members",
            "6",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            match = re.search(r"metrics\s+(http://127\.0\.0\.1:\d+)/metrics", line)
            if match:
                url = match.group(1)
        assert url, "the demo never printed its metrics URL"
        banner = []
        while not banner or "Ctrl-C stops everything" not in banner[-1]:
            banner.append(proc.stdout.readline())
        members: dict = {}
        while time.monotonic() < deadline:
            text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
            members = series(text, "ringwatch_ring_members")
            active = sum(v for k, v in members.items() if dict(k)["state"] == "ACTIVE")
            if active == 6:
                break
            time.sleep(0.5)
        assert sum(members.values()) == 6
        command = one_scan_command("".join(banner))
        assert "--ring.stale-after 20s" in command
        # Pasted into a shell whose PATH does not have the venv (not activated).
        scan = subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        )
        assert scan.returncode == 0, scan.stdout + scan.stderr  # 6 fresh members: no problem
        assert "ingester-5" in scan.stdout
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        print(f"demo stopped {time.monotonic() - started:.2f}s after SIGINT")
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()


def one_scan_command(banner: str) -> str:
    """The `one scan:` command of the demo's banner, continuation lines included."""
    start = banner.index("one scan:") + len("one scan:")
    lines = []
    for line in banner[start:].splitlines():
        lines.append(line.strip())
        if not line.rstrip().endswith("\\"):
            break
    return "\n".join(lines)
