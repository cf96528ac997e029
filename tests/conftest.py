"""Shared test fixtures: dummy AWS credentials, a real moto DynamoDB server on
loopback, and tables loaded with the real Cortex dumps."""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "cortex"
DUMPS = ("healthy", "sigstop-45s", "sigterm-3s", "after-sigterm-exit", "with-ttl")

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_dump(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"table-dump-{name}.json").read_text())


def load_decoded(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"decoded-{name}.json").read_text())


def boto3_item(wire_item: dict[str, Any]) -> dict[str, Any]:
    """A dump's wire-JSON item as boto3's low-level client takes it (B as bytes)."""
    item = dict(wire_item)
    item["Data"] = {"B": base64.b64decode(wire_item["Data"]["B"])}
    return item


class MotoDynamo:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        self.port = self.server._server.server_port
        self.endpoint_url = f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        import boto3

        return boto3.client("dynamodb", endpoint_url=self.endpoint_url, region_name="us-east-1")

    def create_table(self, name: str) -> None:
        from ringwatch.localdynamo import create_ring_table

        create_ring_table(self.endpoint_url, name)

    def load(self, table: str, items: list[dict[str, Any]], fresh: bool = True) -> None:
        client = self.client()
        if fresh:
            try:
                client.delete_table(TableName=table)
            except client.exceptions.ResourceNotFoundException:
                pass
            self.create_table(table)
        for item in items:
            client.put_item(TableName=table, Item=boto3_item(item))

    def load_dump(self, table: str, dump: str) -> dict[str, Any]:
        document = load_dump(dump)
        self.load(table, document["Items"])
        return document

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session")
def moto_dynamo() -> Iterator[MotoDynamo]:
    server = MotoDynamo()
    yield server
    server.stop()
