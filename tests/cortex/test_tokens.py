"""Tokens kept as packed varints read back as exactly what protobuf's own parser
reads from the same bytes, alone and concatenated over a whole ring."""

from __future__ import annotations

import base64

import cramjam
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ringwatch.cortex.decode import DecodeError, ItemDecoder, decode_item
from ringwatch.cortex.proto import InstanceDesc
from ringwatch.cortex.tokens import Tokens, ring_tokens


def _varint(value: int, padding: int = 0) -> bytes:
    """`value` as a varint, `padding` redundant 0x80 bytes longer than it needs."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value or padding:
            out.append(byte | 0x80)
            if not value:
                padding -= 1
        else:
            out.append(byte)
            return bytes(out)


def _item(payload: bytes) -> dict:
    raw = (InstanceDesc(addr="a:1", timestamp=5).SerializeToString()
           + b"\x32" + _varint(len(payload)) + payload)
    data = bytes(cramjam.snappy.compress_raw(raw))
    return {"RingKey": {"S": "r"}, "InstanceKey": {"S": "m"},
            "Data": {"B": base64.b64encode(data).decode()}, "version": {"N": "1"}}


def test_ten_byte_varints_with_high_bits_read_as_protobuf_reads_them() -> None:
    for payload in (b"\xff" * 9 + b"\x7f", b"\xff" * 9 + b"\x01", b"\x80" * 9 + b"\x02",
                    b"\xff" * 10 + b"\x01", b"\x05" + b"\xff" * 9 + b"\x7f\x07"):
        _assert_read_as_protobuf_reads_it(payload)


varints = st.lists(st.tuples(st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1),
                                       st.sampled_from([0, 127, 128, 2**28, 2**32 - 1])),
                             st.sampled_from([0, 0, 0, 1, 4, 9, 10])), max_size=20)


@settings(max_examples=500, deadline=None)
@given(varints, st.binary(max_size=3))
def test_packed_tokens_read_as_protobuf_reads_them(values: list[tuple[int, int]],
                                                   tail: bytes) -> None:
    _assert_read_as_protobuf_reads_it(b"".join(_varint(v, pad) for v, pad in values) + tail)


def _assert_read_as_protobuf_reads_it(payload: bytes) -> None:
    """Both decoders agree with protobuf's parser on a packed tokens field of `payload`."""
    item = _item(payload)
    try:
        expected = decode_item(item)
    except DecodeError as err:
        try:
            ItemDecoder().decode(item)
        except DecodeError as got:
            assert (got.reason, got.detail) == (err.reason, err.detail)
        else:
            raise AssertionError("the fast decoder accepted what decode_item refused") from None
        return
    got = ItemDecoder().decode(item)
    assert got == expected
    from_protobuf = tuple(InstanceDesc.FromString(
        cramjam.snappy.decompress_raw(base64.b64decode(item["Data"]["B"])).read()).tokens)
    assert tuple(got.tokens) == tuple(expected.tokens) == from_protobuf
    assert len(got.tokens) == len(from_protobuf)
    assert got.tokens.array().tolist() == list(from_protobuf)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2**32 - 1), max_size=10), max_size=8))
def test_a_ring_of_packed_tokens_is_one_array_in_member_order(members: list[list[int]]
                                                               ) -> None:
    tokens = [Tokens.from_values(m) for m in members]
    array = ring_tokens(tokens)
    assert array.dtype == np.uint32
    assert array.tolist() == [t for m in members for t in m]
    assert [len(t) for t in tokens] == [len(m) for m in members]


def test_tokens_compare_by_value_whatever_the_encoding() -> None:
    canonical = Tokens.from_values([1, 300])
    padded = Tokens.from_packed(_varint(1, padding=2) + _varint(300))
    assert padded is not None and padded.packed != canonical.packed
    assert padded == canonical == (1, 300)
    assert canonical != Tokens.from_values([1, 301]) and canonical != (1,)
    assert Tokens.from_packed(b"\x80") is None  # a truncated varint is left to protobuf
    assert Tokens.from_packed(_varint(1, padding=5)) == (1,)  # legal: up to 10 bytes
    assert Tokens.from_packed(_varint(1, padding=10)) is None  # 11 bytes: left to protobuf
    assert not Tokens.from_packed(b"") and list(Tokens.from_values([])) == []
