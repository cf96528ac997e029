"""ringwatch: watch a Cortex hash ring stored in DynamoDB from outside."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

# The one version: the package metadata (pyproject.toml reads it from here), `--version`
# and ringwatch_build_info all take it from this line.
__version__ = "0.1.0"

_PACKAGE_DIR = Path(__file__).resolve().parent
# Written by the Dockerfile (build argument REVISION) before `pip install .`.
_REVISION_FILE = _PACKAGE_DIR / "REVISION"


@functools.cache
def revision() -> str:
    """The source revision (git commit) this ringwatch was built from, or "unknown".

    The REVISION file a build wrote into the package wins; a source checkout (an
    editable install) asks git, under a deadline."""
    try:
        text = _REVISION_FILE.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    if text:
        return text
    try:
        run = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=_PACKAGE_DIR,
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = run.stdout.strip()
    return commit if run.returncode == 0 and commit else "unknown"
