"""What the end-to-end modules share: figures kept for the end of pytest's report, one stack a
module started and stopped with its logs on failure. A module names itself in E2E_NAME and
builds its stack in a `make_stack(tmp_path)` function."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator

import pytest
from support import REPO
from support.figures import record_figure

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from e2e.stack import Stack


def _name(request: pytest.FixtureRequest) -> str:
    return getattr(request.module, "E2E_NAME", "e2e")


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    """The module's stack (its `make_stack`), started once and stopped after its tests."""
    name, started = _name(request), time.monotonic()
    s: Stack = request.module.make_stack(tmp_path_factory.mktemp(name.replace(" ", "-")))
    try:
        s.start(timeout=getattr(request.module, "START_TIMEOUT", 60))
    except BaseException:
        record_figure(request.config, f"{name}: stack did not start:\n" + s.logs())
        s.stop()
        raise
    record_figure(
        request.config,
        f"\n{name}: stack up in {time.monotonic() - started:.1f}s "
        f"(Prometheus {s.urls['prometheus']}, Alertmanager {s.urls['alertmanager']})",
    )
    try:
        yield s
    finally:
        s.stop()
        record_figure(request.config, f"{name}: wall time {time.monotonic() - started:.1f}s")


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    if "stack" not in request.fixturenames:
        yield
        return
    stack = request.getfixturevalue("stack")
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        record_figure(
            request.config, f"{_name(request)}: logs after {request.node.name}:\n{stack.logs()}"
        )


@pytest.fixture
def say(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a figure for the end of the report, prefixed with the module's E2E_NAME."""
    name = _name(request)
    return lambda text: record_figure(request.config, f"{name}: {text}")
