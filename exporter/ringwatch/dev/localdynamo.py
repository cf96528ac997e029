"""An embedded DynamoDB-compatible server (moto) on loopback, and a Cortex ring table.

Used by `ringwatch demo` and the tests: no AWS account, no network. moto keeps
its tables in module-level state, so two servers in one process share them;
pick distinct table names.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

RING_TABLE_KEYS = (("RingKey", "HASH"), ("InstanceKey", "RANGE"))
DUMMY_ACCESS_KEY = "testing"


def ensure_dummy_credentials() -> bool:
    """Put dummy AWS credentials in the environment unless some are configured there.

    Never overwrites real ones: a set key pair or `AWS_PROFILE` leaves everything as it
    is. Returns True when the dummies were set.
    """
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_SECRET_ACCESS_KEY") or env.get("AWS_PROFILE"):
        return False
    env["AWS_ACCESS_KEY_ID"] = DUMMY_ACCESS_KEY
    env["AWS_SECRET_ACCESS_KEY"] = DUMMY_ACCESS_KEY
    return True


class LocalDynamo:
    """moto's server in a thread of this process, on 127.0.0.1 and a free port.

    with LocalDynamo() as db:
        create_ring_table(db.endpoint_url, "cortex-ring")
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        quiet: bool = True,
        dummy_credentials: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.quiet = quiet
        self.dummy_credentials = dummy_credentials
        self._server: Any = None

    def start(self) -> LocalDynamo:
        """Start the server on a free loopback port (or the one asked for)."""
        if self._server is not None:
            return self
        from moto.server import ThreadedMotoServer

        if self.quiet:
            # werkzeug logs every request at INFO on its own stderr handler.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if self.dummy_credentials:
            ensure_dummy_credentials()
        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=not self.quiet)
        server.start()
        assert server._server is not None  # started
        self.port = server._server.server_port
        self._server = server
        return self

    @property
    def endpoint_url(self) -> str:
        """The URL a DynamoDB client points at."""
        if self._server is None:
            raise RuntimeError("LocalDynamo is not started")
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Stop the server; its tables are gone with it."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> LocalDynamo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_ring_table(
    endpoint_url: str | None,
    table: str,
    region: str = "us-east-1",
    *,
    client: Any = None,
    wait_seconds: float = 60.0,
) -> bool:
    """Create a table shaped like Cortex's ring table; True if created, False if it existed."""
    if client is None:
        import boto3

        client = boto3.session.Session().client(
            "dynamodb", region_name=region, endpoint_url=endpoint_url
        )
    try:
        client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": n, "KeyType": t} for n, t in RING_TABLE_KEYS],
            AttributeDefinitions=[
                {"AttributeName": n, "AttributeType": "S"} for n, _ in RING_TABLE_KEYS
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        created = True
    except client.exceptions.ResourceInUseException:
        created = False
    # Real DynamoDB creates tables asynchronously; moto's are ACTIVE at once.
    deadline = time.monotonic() + wait_seconds
    while True:
        status = client.describe_table(TableName=table)["Table"].get("TableStatus")
        if status == "ACTIVE" or time.monotonic() >= deadline:
            return created
        time.sleep(1.0)
