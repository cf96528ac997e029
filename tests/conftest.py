"""Suite-wide setup: dummy AWS credentials and one real moto DynamoDB server on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from support.figures import write_figures
from support.hostile import serving_the_healthy_dump
from support.moto import MotoDynamo

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def moto_dynamo() -> Iterator[MotoDynamo]:
    """One moto server for the whole session."""
    server = MotoDynamo()
    yield server
    server.stop()


# A hostile DynamoDB-compatible endpoint on loopback, serving the healthy dump; modules
# whose tests leave it in its normal mode share one: hostile = pytest.fixture(scope="module")(...).
hostile = pytest.fixture(serving_the_healthy_dump, name="hostile")


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """The figures the tests measured, after the results."""
    write_figures(terminalreporter, config)
