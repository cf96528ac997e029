"""Cortex's `ring.InstanceDesc` protobuf, built from a descriptor at import time.

Field numbers follow Cortex's `pkg/ring/ring.proto`. Building the descriptor at
runtime keeps protoc out of the build; the message class is a real upb message.
"""

from __future__ import annotations

from typing import Any

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
    return str(api_implementation.Type())


# InstanceDesc's fields as Cortex's ring.proto numbers them: (name, number, type, label).
_Field = descriptor_pb2.FieldDescriptorProto
INSTANCE_DESC_FIELDS: tuple[tuple[str, int, int, int], ...] = (
    ("addr", 1, _Field.TYPE_STRING, _Field.LABEL_OPTIONAL),
    ("timestamp", 2, _Field.TYPE_INT64, _Field.LABEL_OPTIONAL),
    ("state", 3, _Field.TYPE_ENUM, _Field.LABEL_OPTIONAL),
    ("tokens", 6, _Field.TYPE_UINT32, _Field.LABEL_REPEATED),
    ("zone", 7, _Field.TYPE_STRING, _Field.LABEL_OPTIONAL),
    ("registered_timestamp", 8, _Field.TYPE_INT64, _Field.LABEL_OPTIONAL),
)


def _instance_desc_message(
    fdp: descriptor_pb2.FileDescriptorProto, name: str, **retyped: tuple[int, int]
) -> None:
    """Add InstanceDesc, or a read view of it with some fields `retyped` (type, label)."""
    msg = fdp.message_type.add(name=name)
    for field, number, kind, label in INSTANCE_DESC_FIELDS:
        kind, label = retyped.get(field, (kind, label))
        extra = {"type_name": ".ring.InstanceState"} if kind == _Field.TYPE_ENUM else {}
        msg.field.add(name=field, number=number, type=kind, label=label, **extra)
    msg.reserved_range.add(start=4, end=6)


def _build_messages() -> dict[str, Any]:
    """The one descriptor: InstanceDesc (the writer's), its read views, a ring Desc view.

    Read views take addr and zone as bytes (Cortex does not check their UTF-8, so neither
    may the reader); `InstanceDescTokensView` also reads the packed tokens (field 6) as one
    `bytes` value, so parsing costs no per-token work. `RingDescView` is Cortex's `Desc`
    (`map<string, InstanceDesc> ingesters = 1`), which another KV layout stores whole in
    one item. Building at import keeps protoc out of the build; the classes are upb's."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name="ringwatch/cortex_ring.proto", package="ring", syntax="proto3"
    )
    enum = fdp.enum_type.add(name="InstanceState")
    for number, name in STATE_NAMES.items():
        enum.value.add(name=name, number=number)
    # Open enum in proto3: unknown numbers survive as ints and are reported as UNKNOWN.
    _instance_desc_message(fdp, "InstanceDesc")
    as_bytes = (_Field.TYPE_BYTES, _Field.LABEL_OPTIONAL)
    _instance_desc_message(
        fdp,
        "InstanceDescRead",
        addr=as_bytes,
        zone=as_bytes,
        state=(_Field.TYPE_INT32, _Field.LABEL_OPTIONAL),
    )
    _instance_desc_message(
        fdp,
        "InstanceDescTokensView",
        addr=as_bytes,
        zone=as_bytes,
        state=(_Field.TYPE_INT32, _Field.LABEL_OPTIONAL),
        tokens=as_bytes,
    )
    entry = fdp.message_type.add(name="IngesterEntry")
    entry.field.add(name="key", number=1, type=_Field.TYPE_BYTES, label=_Field.LABEL_OPTIONAL)
    entry.field.add(
        name="value",
        number=2,
        type=_Field.TYPE_MESSAGE,
        label=_Field.LABEL_OPTIONAL,
        type_name=".ring.InstanceDescRead",
    )
    ring = fdp.message_type.add(name="RingDescView")
    ring.field.add(
        name="ingesters",
        number=1,
        type=_Field.TYPE_MESSAGE,
        label=_Field.LABEL_REPEATED,
        type_name=".ring.IngesterEntry",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"ring.{name}"))
        for name in ("InstanceDesc", "InstanceDescRead", "InstanceDescTokensView", "RingDescView")
    }


_MESSAGES: dict[str, Any] = _build_messages()
InstanceDesc = _MESSAGES["InstanceDesc"]
InstanceDescRead = _MESSAGES["InstanceDescRead"]
InstanceDescTokensView = _MESSAGES["InstanceDescTokensView"]
RingDescView = _MESSAGES["RingDescView"]
