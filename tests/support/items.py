"""Cortex items for tests: reading `InstanceDesc` bytes the way Cortex's Go code does."""

from __future__ import annotations

from google.protobuf.message import DecodeError as ProtobufDecodeError

# addr and zone as unchecked bytes, state as a plain int: what Cortex accepts.
from ringwatch.cortex.proto import InstanceDescRead as InstanceDescBytes

__all__ = ["InstanceDescBytes", "readable_by_cortex", "varint"]


def readable_by_cortex(raw: bytes) -> bool:
    """True if Cortex would read `raw` as an InstanceDesc (UTF-8 not checked)."""
    try:
        InstanceDescBytes.FromString(raw)
    except (ProtobufDecodeError, RuntimeError, ValueError):
        return False
    return True


def varint(value: int) -> bytes:
    """A non-negative int as protobuf's shortest varint."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)
