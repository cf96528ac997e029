"""What ringwatch does with the Cortex layouts it was not recorded against: fields a
newer Cortex may add are skipped, attributes a newer layout may add are ignored, and a
layout that is not one `InstanceDesc` per item is counted, never read as members."""

from __future__ import annotations

import base64
from typing import Any

import cramjam
import msgspec
import orjson
import pytest
from support.cortexdata import DUMPS, load_dump
from support.hostile import wire_item
from support.items import varint
from support.oracle import decode_item

from ringwatch.cortex.decode import DecodeError, ItemDecoder, read_items_json
from ringwatch.cortex.proto import InstanceDesc

RING = "collectors/ring"
KNOWN = {
    "addr": "10.0.0.1:9095",
    "timestamp": 1_795_669_453,
    "state": "LEAVING",
    "zone": "zone-b",
    "registered_timestamp": 1_795_660_000,
    "tokens": (7, 2**31, 2**32 - 1),
}


def _known_desc() -> bytes:
    fields = dict(KNOWN, state=1, tokens=list(KNOWN["tokens"]))
    return InstanceDesc(**fields).SerializeToString()


# Fields a newer Cortex could add to InstanceDesc, one of each protobuf wire type,
# numbered past the ones read today (and the two reserved ones, written anyway).
_NESTED = b"\x0a\x05hello\x10\x01\x18\x02\x20\x03"  # a message of its own
NEWER_FIELDS = {
    "varint": varint(9 << 3 | 0) + varint(123456789),
    "length-delimited": varint(10 << 3 | 2) + varint(len(_NESTED)) + _NESTED,
    "fixed64": varint(11 << 3 | 1) + bytes(range(8)),
    "fixed32": varint(12 << 3 | 5) + bytes(range(4)),
    "reserved 4 and 5": b"\x20\x01" + b"\x2a\x03old",
    "a high field number": varint(536_870_911 << 3 | 0) + b"\x01",
}


def _decoders(item: dict[str, Any]) -> list[Any]:
    """The oracle, the cached decoder's first and second pass, and the typed wire path."""
    results: list[Any] = []
    decoder = ItemDecoder()
    for decode in (decode_item, decoder.decode, decoder.decode):
        try:
            results.append(decode(item))
        except DecodeError as err:
            results.append(err)
    [typed] = read_items_json(msgspec.Raw(orjson.dumps([item])))
    try:
        results.append(ItemDecoder().decode(typed))
    except DecodeError as err:
        results.append(err)
    return results


@pytest.mark.parametrize("kind", sorted(NEWER_FIELDS))
def test_an_instance_desc_with_a_field_from_a_newer_cortex_decodes(kind: str) -> None:
    for position in ("after", "before"):
        raw = (
            _known_desc() + NEWER_FIELDS[kind]
            if position == "after"
            else NEWER_FIELDS[kind] + _known_desc()
        )
        item = wire_item(RING, "ingester-1", bytes(cramjam.snappy.compress_raw(raw)))
        for member in _decoders(item):
            assert not isinstance(member, DecodeError), (kind, position, member)
            got = {
                "addr": member.addr,
                "timestamp": member.heartbeat_timestamp,
                "state": member.state,
                "zone": member.zone,
                "registered_timestamp": member.registered_timestamp,
                "tokens": tuple(member.tokens),
            }
            assert got == KNOWN, (kind, position)


def test_an_item_attribute_from_a_newer_layout_is_ignored() -> None:
    item = wire_item(RING, "ingester-1", bytes(cramjam.snappy.compress_raw(_known_desc())))
    item["schema"] = {"N": "2"}
    item["Owner"] = {"S": "someone"}
    for member in _decoders(item):
        assert not isinstance(member, DecodeError), member
        assert (member.addr, tuple(member.tokens)) == (KNOWN["addr"], KNOWN["tokens"])


def test_a_whole_ring_in_one_item_is_counted_as_ring_desc_not_read_as_members() -> None:
    """Consul and etcd keep a ring as one `Desc` (`map<string, InstanceDesc>`); stored so
    in this table it would read as one garbage member without the check."""
    entries = b""
    for name in ("ingester-1", "ingester-2"):
        value = InstanceDesc(
            addr=f"{name}:9095", timestamp=1_795_669_453, tokens=[1, 2]
        ).SerializeToString()
        entry = b"\x0a" + varint(len(name)) + name.encode() + b"\x12" + varint(len(value)) + value
        entries += b"\x0a" + varint(len(entry)) + entry
    item = wire_item(RING, "ring", bytes(cramjam.snappy.compress_raw(entries)))
    for result in _decoders(item):
        assert isinstance(result, DecodeError) and result.reason == "ring_desc", result


@pytest.mark.parametrize("dump", DUMPS)
def test_the_recorded_cortex_items_have_the_documented_layout_and_nothing_else(dump: str) -> None:
    """The fixtures are the layout ringwatch is tested against: four attributes (five
    with ttl), and InstanceDescs with no field ringwatch does not know."""
    from google.protobuf.unknown_fields import UnknownFieldSet

    from ringwatch.cortex.proto import InstanceDescRead

    for item in load_dump(dump)["Items"]:
        assert set(item) - {"ttl"} == {"RingKey", "InstanceKey", "Data", "version"}
        raw = bytes(cramjam.snappy.decompress_raw(base64.b64decode(item["Data"]["B"])))
        assert len(UnknownFieldSet(InstanceDescRead.FromString(raw))) == 0
        for result in _decoders(item):
            assert not isinstance(result, DecodeError), result
