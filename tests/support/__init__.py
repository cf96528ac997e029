"""Helpers shared by the test suite: paths, Cortex dumps, a moto server, hostile endpoints,
test certificates (pki) and the exporter served in-process for web tests (webserve)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
