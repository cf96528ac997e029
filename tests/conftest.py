"""Suite-wide setup: dummy AWS credentials and one real moto DynamoDB server on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from support.cortexdata import load_dump
from support.hostile import HostileDynamo
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


@pytest.fixture
def hostile() -> Iterator[HostileDynamo]:
    """A hostile DynamoDB-compatible endpoint on loopback, serving the healthy dump."""
    with HostileDynamo(items=list(load_dump("healthy")["Items"])) as server:
        yield server
