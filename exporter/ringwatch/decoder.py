"""One DynamoDB item of a Cortex ring (DynamoDB JSON) -> one `Member`.

Items come as DynamoDB's wire JSON (`{"Data": {"B": "<base64>"}, ...}`); `B`
may also already be bytes, as boto3's parser leaves it. A bad item raises
`DecodeError` with the reason used in `ringwatch_decode_errors_total`.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from dataclasses import dataclass
from typing import Any

import cramjam
from google.protobuf.message import DecodeError as ProtobufDecodeError

from .ringproto import STATE_NAMES, UNKNOWN_STATE, InstanceDesc

_decompress_raw = cramjam.snappy.decompress_raw


class DecodeError(Exception):
    """An item that cannot be read; `reason` is `snappy`, `protobuf` or `attribute`."""

    def __init__(self, reason: str, detail: str, ring: str = "", member: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.ring = ring
        self.member = member


@dataclass(frozen=True, slots=True)
class Member:
    ring: str
    member: str
    addr: str
    zone: str
    state: str
    state_num: int
    heartbeat_timestamp: int
    registered_timestamp: int
    tokens: tuple[int, ...]
    version: int
    ttl: int | None
    item_bytes: int


def _string(item: dict[str, Any], name: str) -> str:
    try:
        value = item[name]["S"]
    except (KeyError, TypeError):
        raise DecodeError("attribute", f"{name} missing or not a string") from None
    if not isinstance(value, str):
        raise DecodeError("attribute", f"{name} is not a string")
    return value


def _number(item: dict[str, Any], name: str) -> int:
    try:
        text = item[name]["N"]
    except (KeyError, TypeError):
        raise DecodeError("attribute", f"{name} missing or not a number") from None
    try:
        # DynamoDB numbers are decimal strings; Cortex writes integers.
        return int(text) if isinstance(text, str) and text.isdigit() else int(float(text))
    except (TypeError, ValueError, OverflowError):
        raise DecodeError("attribute", f"{name} is not a number: {text!r:.40}") from None


def _binary(item: dict[str, Any], name: str) -> bytes:
    try:
        value = item[name]["B"]
    except (KeyError, TypeError):
        raise DecodeError("attribute", f"{name} missing or not binary") from None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if not isinstance(value, str):
        raise DecodeError("attribute", f"{name} is not binary")
    try:
        return b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("attribute", f"{name} is not valid base64") from None


def decode_item(item: dict[str, Any]) -> Member:
    if not isinstance(item, dict):
        raise DecodeError("attribute", "item is not a map")
    ring = _string(item, "RingKey")
    member = _string(item, "InstanceKey")
    try:
        data = _binary(item, "Data")
        version = _number(item, "version")
        ttl = _number(item, "ttl") if "ttl" in item else None
        try:
            raw = _decompress_raw(data)
        except Exception as exc:  # cramjam raises its own DecompressionError
            raise DecodeError("snappy", str(exc) or "bad snappy block") from None
        try:
            desc = InstanceDesc.FromString(bytes(raw))
        except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
            raise DecodeError("protobuf", str(exc) or "bad InstanceDesc") from None
    except DecodeError as err:
        err.ring, err.member = ring, member
        raise
    state_num = desc.state
    return Member(
        ring=ring,
        member=member,
        addr=desc.addr,
        zone=desc.zone,
        state=STATE_NAMES.get(state_num, UNKNOWN_STATE),
        state_num=state_num,
        heartbeat_timestamp=desc.timestamp,
        registered_timestamp=desc.registered_timestamp,
        tokens=tuple(desc.tokens),
        version=version,
        ttl=ttl,
        item_bytes=len(data),
    )
