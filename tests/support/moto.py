"""A real moto DynamoDB server on loopback, loaded with Cortex dumps."""

from __future__ import annotations

from typing import Any

from support.cortexdata import boto3_item, load_dump


class MotoDynamo:
    """moto's threaded server on 127.0.0.1, a free port."""

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
        from ringwatch.dev.localdynamo import create_ring_table

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
