"""Figures the tests measure, written in one section at the end of pytest's report (not in
the middle of its progress line, and whether or not output is captured)."""

from __future__ import annotations

import pytest

FIGURES = pytest.StashKey[list[str]]()


def record_figure(config: pytest.Config, text: str) -> None:
    """Keep `text` for the "measured figures" section at the end of the run."""
    config.stash.setdefault(FIGURES, []).append(text.strip("\n"))


def write_figures(reporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The "measured figures" section: every recorded figure, in the order measured."""
    figures = config.stash.get(FIGURES, [])
    if figures:
        reporter.section("measured figures")
        for text in figures:
            reporter.write_line(text)
