"""The test oracle for decoding: one DynamoDB item -> `Member` the plain way.

No caches, no shortcuts: every attribute read by the package's own attribute rules,
the whole `InstanceDesc` parsed by protobuf, tokens re-encoded canonically. The
exporter's `ItemDecoder` must give exactly what this gives, error reasons included.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError as ProtobufDecodeError

from ringwatch.cortex.decode import (
    DecodeError,
    Member,
    binary_attribute,
    decompress_data,
    number_attribute,
    refuse_ring_desc,
    string_attribute,
    text_field,
)
from ringwatch.cortex.proto import STATE_NAMES, UNKNOWN_STATE, InstanceDescRead
from ringwatch.cortex.tokens import Tokens


def decode_item(item: dict[str, Any]) -> Member:
    """One DynamoDB item -> Member, or DecodeError with its reason."""
    if not isinstance(item, dict):
        raise DecodeError("attribute", "item is not a map")
    ring = string_attribute(item, "RingKey")
    member = string_attribute(item, "InstanceKey")
    try:
        data = binary_attribute(item, "Data")
        version = number_attribute(item, "version", counter=True)
        ttl = number_attribute(item, "ttl") if "ttl" in item else None
        raw = decompress_data(data)
        try:
            desc = InstanceDescRead.FromString(raw)
        except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
            raise DecodeError("protobuf", str(exc) or "bad InstanceDesc") from None
        refuse_ring_desc(raw, desc)
    except DecodeError as err:
        err.ring, err.member = ring, member
        raise
    state_num = desc.state
    return Member(
        ring=ring,
        name=member,
        addr=text_field(desc.addr),
        zone=text_field(desc.zone),
        state=STATE_NAMES.get(state_num, UNKNOWN_STATE),
        state_num=state_num,
        heartbeat_timestamp=desc.timestamp,
        registered_timestamp=desc.registered_timestamp,
        tokens=Tokens.from_values(desc.tokens),
        version=version,
        ttl=ttl,
        item_bytes=len(data),
    )
