"""The benchmark's quick mode (N = 1,000) runs to the end and prints every
figure. No timing is asserted: the machine is shared and noisy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from support import REPO

ROOT = REPO
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench import FIGURES, ONE_RING_FIGURES, TARGETS  # noqa: E402


def test_quick_benchmark_completes_and_prints_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in FIGURES + ONE_RING_FIGURES:
        assert name in proc.stdout, f"figure {name!r} not printed"
    figures_printed = proc.stdout.split("\nfigure")[1]
    assert not re.search(r"\s-\d", figures_printed), "a negative figure was printed"
    for figure, *_ in TARGETS:
        assert figure in proc.stdout.split("targets:")[1]
    document = json.loads(out.read_text())
    figures = document["results"][0]["figures"]
    assert document["results"][0]["n"] == 1000
    assert set(FIGURES) <= set(figures)
    assert figures["render identical to plain"] == 1.0
    assert set(ONE_RING_FIGURES) == set(document["one_ring"]["figures"])
    costs = document["member_costs"]["us_per_member"]
    assert {"floor (json.loads)", "library calls", "decode", "build", "render"} <= set(costs)
    assert all(value > 0 for value in costs.values())
    assert "what a member costs" in proc.stdout
    assert document["machine"]["cpus"] >= 1
    assert (tmp_path / "RESULTS.md").read_text().startswith("# ringwatch benchmark results")
