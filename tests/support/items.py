"""Cortex items for tests: an independent reader of `InstanceDesc` bytes, and
hypothesis strategies for hostile but decodable items."""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as ProtobufDecodeError


def _instance_desc_bytes() -> type:
    """`InstanceDesc` as Cortex's Go code reads it: addr and zone unchecked bytes."""
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="tests/instance_desc_bytes.proto",
                                             package="tests_ring", syntax="proto3")
    msg = fdp.message_type.add(name="InstanceDescBytes")
    for name, number, kind, label in (
            ("addr", 1, F.TYPE_BYTES, F.LABEL_OPTIONAL),
            ("timestamp", 2, F.TYPE_INT64, F.LABEL_OPTIONAL),
            ("state", 3, F.TYPE_INT32, F.LABEL_OPTIONAL),
            ("tokens", 6, F.TYPE_UINT32, F.LABEL_REPEATED),
            ("zone", 7, F.TYPE_BYTES, F.LABEL_OPTIONAL),
            ("registered_timestamp", 8, F.TYPE_INT64, F.LABEL_OPTIONAL)):
        msg.field.add(name=name, number=number, type=kind, label=label)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tests_ring.InstanceDescBytes"))


InstanceDescBytes = _instance_desc_bytes()


def readable_by_cortex(raw: bytes) -> bool:
    """True if Cortex would read `raw` as an InstanceDesc (UTF-8 not checked)."""
    try:
        InstanceDescBytes.FromString(raw)
    except (ProtobufDecodeError, RuntimeError, ValueError):
        return False
    return True
