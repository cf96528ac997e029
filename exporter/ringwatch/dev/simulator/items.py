"""Cortex ring items, written the way Cortex's DynamoDB KV store writes them.

One item per member: RingKey (S), InstanceKey (S), Data (B, raw snappy block of
a serialized `InstanceDesc`), version (N), ttl (N, optional). Puts are
compare-and-swap writes in a `TransactWriteItems`, guarded by Cortex's own
condition; the new version is the version read before plus one.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

CAS_CONDITION = "attribute_not_exists(version) OR version = :v"


class CASConflict(Exception):
    """The item's version is not the one the write expected: someone else wrote it."""


def make_client(
    endpoint_url: str | None,
    region: str,
    *,
    connect_timeout: float = 2.0,
    read_timeout: float = 2.0,
    max_attempts: int = 2,
) -> Any:
    """A boto3 DynamoDB client for the simulator's writes."""
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": max_attempts},
    )
    return boto3.session.Session().client(
        "dynamodb", region_name=region, endpoint_url=endpoint_url, config=config
    )


def _key(ring: str, member: str) -> dict[str, Any]:
    return {"RingKey": {"S": ring}, "InstanceKey": {"S": member}}


def _is_condition_failure(err: ClientError) -> bool:
    code = err.response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = err.response.get("CancellationReasons") or []
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    return False


def cas_put(
    client: Any,
    table: str,
    ring: str,
    member: str,
    data: bytes,
    expected_version: int,
    ttl: int | None = None,
) -> int:
    """Write the item if its version is still `expected_version` (0: no item); new version."""
    new_version = expected_version + 1
    item = {**_key(ring, member), "Data": {"B": data}, "version": {"N": str(new_version)}}
    if ttl is not None:
        item["ttl"] = {"N": str(ttl)}
    put = {
        "TableName": table,
        "Item": item,
        "ConditionExpression": CAS_CONDITION,
        "ExpressionAttributeValues": {":v": {"N": str(expected_version)}},
    }
    try:
        client.transact_write_items(TransactItems=[{"Put": put}])
    except ClientError as err:
        if _is_condition_failure(err):
            raise CASConflict(f"{ring}/{member}: version is not {expected_version}") from None
        raise
    return new_version


def delete_member(client: Any, table: str, ring: str, member: str) -> None:
    """Delete a member's item, as Cortex does when it leaves."""
    client.transact_write_items(
        TransactItems=[{"Delete": {"TableName": table, "Key": _key(ring, member)}}]
    )


def read_version(client: Any, table: str, ring: str, member: str) -> int:
    """The item's current version, 0 when there is no item."""
    resp = client.get_item(TableName=table, Key=_key(ring, member), ConsistentRead=True)
    item = resp.get("Item")
    if not item or "version" not in item:
        return 0
    return int(item["version"]["N"])
