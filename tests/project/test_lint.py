"""The code base stays ruff-clean, and the README's two commands are what CI runs."""

from __future__ import annotations

import re
import subprocess
import sys

from support import REPO

ROOT = REPO


def test_ruff_finds_nothing() -> None:
    paths = [p for p in ("exporter", "tests", "benchmarks", "mixin", "e2e") if (ROOT / p).exists()]
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", *paths], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command_word_for_word() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    assert len(blocks) >= 2, "the README opens with two commands: demo, then tests"
    demo, tests = blocks[0].strip(), blocks[1].strip()
    assert "ringwatch demo" in demo
    assert "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci.splitlines()
