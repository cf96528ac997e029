"""Starts the measured programs for bench.py, from a process that stays small.

A process's peak RSS (`ru_maxrss`, from `os.wait4` or `getrusage`) includes the
RSS of the process it was forked from, kept across `exec`: started from
bench.py, which holds every table in memory (hundreds of MB at 50k members),
each program would report bench.py's size instead of its own. bench.py starts
this spawner first, while it is small, and has it start everything measured.

Protocol: one JSON list (the argv) per line on stdin; one JSON object per line
on stdout: exit status, CPU and wall seconds, peak RSS, the program's stdout and
the end of its stderr. Standard library only, so that it stays small.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time


def run(args: list[str]) -> dict[str, object]:
    """Run one program to its end; what bench.py measures of it."""
    # Files, not pipes: nobody reads a pipe while wait4 blocks (its logs would fill it).
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        err.seek(0)
        stderr = err.read().decode(errors="replace")
        out.seek(0)
        stdout = out.read().decode(errors="replace")
    return {
        "exit": os.waitstatus_to_exitcode(status),
        "process_cpu": usage.ru_utime + usage.ru_stime,
        "process_wall": wall,
        "process_rss_mb": usage.ru_maxrss / 1024,
        "stdout": stdout,
        "stderr_tail": stderr[-2000:],
    }


def main() -> None:
    for line in sys.stdin:
        print(json.dumps(run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
