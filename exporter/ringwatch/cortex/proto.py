"""Cortex's `ring.InstanceDesc` protobuf, built from a descriptor at import time.

Field numbers follow Cortex's `pkg/ring/ring.proto`. Building the descriptor at
runtime keeps protoc out of the build; the message class is a real upb message.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal import api_implementation

STATE_NAMES: dict[int, str] = {
    0: "ACTIVE",
    1: "LEAVING",
    2: "PENDING",
    3: "JOINING",
    4: "LEFT",
    5: "READONLY",
}
STATE_NUMBERS: dict[str, int] = {name: num for num, name in STATE_NAMES.items()}
KNOWN_STATES: tuple[str, ...] = tuple(STATE_NAMES.values())
UNKNOWN_STATE = "UNKNOWN"


def protobuf_backend() -> str:
    """`upb`, `cpp` or `python` (the last is refused by the CLI: 50-80x slower)."""
    return api_implementation.Type()


def _build_instance_desc() -> type:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="ringwatch/cortex_ring.proto", package="ring", syntax="proto3"
    )
    enum = fdp.enum_type.add(name="InstanceState")
    for number, name in STATE_NAMES.items():
        enum.value.add(name=name, number=number)

    F = descriptor_pb2.FieldDescriptorProto
    msg = fdp.message_type.add(name="InstanceDesc")
    msg.field.add(name="addr", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    msg.field.add(name="timestamp", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    # Open enum in proto3: unknown numbers survive as ints and are reported as UNKNOWN.
    msg.field.add(
        name="state", number=3, type=F.TYPE_ENUM, type_name=".ring.InstanceState",
        label=F.LABEL_OPTIONAL,
    )
    msg.field.add(name="tokens", number=6, type=F.TYPE_UINT32, label=F.LABEL_REPEATED)
    msg.field.add(name="zone", number=7, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    msg.field.add(
        name="registered_timestamp", number=8, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL
    )
    msg.reserved_range.add(start=4, end=6)

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("ring.InstanceDesc"))


InstanceDesc = _build_instance_desc()
