"""Writing a Cortex ring item's `Data`: the inverse of decoding (the simulator and tests use it)."""

from __future__ import annotations

import cramjam

from ringwatch.cortex.proto import STATE_NUMBERS, InstanceDesc


def encode_desc(
    *,
    addr: str,
    timestamp: int,
    state: str,
    tokens: list[int] | tuple[int, ...],
    zone: str,
    registered_timestamp: int,
) -> bytes:
    """A Cortex `Data` attribute: the InstanceDesc, protobuf then raw snappy."""
    desc = InstanceDesc(
        addr=addr,
        timestamp=timestamp,
        state=STATE_NUMBERS[state],
        tokens=list(tokens),
        zone=zone,
        registered_timestamp=registered_timestamp,
    )
    return bytes(cramjam.snappy.compress_raw(desc.SerializeToString()))
