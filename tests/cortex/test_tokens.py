"""Tokens kept as packed varints read back as exactly what protobuf's own parser
reads from the same bytes, alone and concatenated over a whole ring."""

from __future__ import annotations

import base64
from itertools import cycle

import cramjam
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from support.oracle import decode_item

from ringwatch.cortex.decode import DecodeError, ItemDecoder
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
    raw = (
        InstanceDesc(addr="a:1", timestamp=5).SerializeToString()
        + b"\x32"
        + _varint(len(payload))
        + payload
    )
    data = bytes(cramjam.snappy.compress_raw(raw))
    return {
        "RingKey": {"S": "r"},
        "InstanceKey": {"S": "m"},
        "Data": {"B": base64.b64encode(data).decode()},
        "version": {"N": "1"},
    }


def test_ten_byte_varints_with_high_bits_read_as_protobuf_reads_them() -> None:
    for payload in (
        b"\xff" * 9 + b"\x7f",
        b"\xff" * 9 + b"\x01",
        b"\x80" * 9 + b"\x02",
        b"\xff" * 10 + b"\x01",
        b"\x05" + b"\xff" * 9 + b"\x7f\x07",
    ):
        _assert_read_as_protobuf_reads_it(payload)


varints = st.lists(
    st.tuples(
        st.one_of(
            st.integers(0, 2**32 - 1),
            st.integers(0, 2**64 - 1),
            st.sampled_from([0, 127, 128, 2**28, 2**32 - 1]),
        ),
        st.sampled_from([0, 0, 0, 1, 4, 9, 10]),
    ),
    max_size=20,
)


@settings(max_examples=500, deadline=None)
@given(varints, st.binary(max_size=3))
def test_packed_tokens_read_as_protobuf_reads_them(
    values: list[tuple[int, int]], tail: bytes
) -> None:
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
    from_protobuf = tuple(
        InstanceDesc.FromString(
            cramjam.snappy.decompress_raw(base64.b64decode(item["Data"]["B"])).read()
        ).tokens
    )
    assert tuple(got.tokens) == tuple(expected.tokens) == from_protobuf
    assert len(got.tokens) == len(from_protobuf)
    assert got.tokens.array().tolist() == list(from_protobuf)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2**32 - 1), max_size=10), max_size=8))
def test_a_ring_of_packed_tokens_is_one_array_in_member_order(members: list[list[int]]) -> None:
    tokens = [Tokens.from_values(m) for m in members]
    array = ring_tokens(tokens)
    assert array.dtype == np.uint32
    assert array.tolist() == [t for m in members for t in m]
    assert [len(t) for t in tokens] == [len(m) for m in members]


def _protobuf_tokens(payload: bytes) -> list[int]:
    """What protobuf's parser reads from `payload` as the packed tokens field."""
    return list(InstanceDesc.FromString(b"\x32" + _varint(len(payload)) + payload).tokens)


def _as_read(payload: bytes) -> Tokens:
    """The `Tokens` the decoder keeps of a packed field: its bytes as they are, counted
    by protobuf's parser."""
    return Tokens(payload, len(_protobuf_tokens(payload)))


def _legal_varint(value: int, padding: int) -> bytes:
    """`value` as a varint with up to `padding` redundant bytes, 10 bytes at most."""
    return _varint(value, min(padding, 10 - len(_varint(value))))


# Mostly 5-byte varints (a random uint32 is one 15 times in 16), next to every
# other length from 1 to 10 bytes (padded encodings, values past 32 bits).
ring_varints = st.lists(
    st.tuples(
        st.one_of(
            st.integers(2**28, 2**32 - 1),
            st.integers(0, 2**32 - 1),
            st.integers(0, 2**64 - 1),
            st.sampled_from([0, 1, 127, 128, 2**28 - 1, 2**32]),
        ),
        st.sampled_from([0, 0, 0, 0, 1, 2, 4, 9]),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ring_varints, max_size=8))
def test_a_ring_of_any_legal_varints_reads_as_protobuf_reads_each_member(
    members: list[list[tuple[int, int]]],
) -> None:
    payloads = [b"".join(_legal_varint(v, pad) for v, pad in m) for m in members]
    tokens = [_as_read(p) for p in payloads]
    array = ring_tokens(tokens)
    assert array.dtype == np.uint32
    assert array.tolist() == [t for p in payloads for t in _protobuf_tokens(p)]


def test_every_varint_length_next_to_every_other_reads_as_protobuf_reads_it() -> None:
    def of_length(n: int) -> bytes:
        # All value bits set (past the 32nd at 5 bytes), then padding up to n bytes.
        return _varint(2 ** (7 * min(n, 5)) - 1, padding=max(0, n - 5))

    varints = [of_length(n) for a in range(1, 11) for b in range(1, 11) for n in (a, b)]
    varints += [_varint(2**64 - 1), _varint(2**63)]  # 10 bytes without padding
    assert {len(v) for v in varints} == set(range(1, 11))
    # Members of 0 to 6 varints, so every length also starts and ends a member.
    members, at = [], 0
    for size in cycle([0, 1, 2, 3, 0, 4, 5, 6]):
        members.append(b"".join(varints[at : at + size]))
        at += size
        if at >= len(varints):
            break
    for ring in (members, members[::-1], [m[:1] for m in members if m and m[0] < 0x80]):
        tokens = [_as_read(m) for m in ring]
        assert ring_tokens(tokens).tolist() == [t for m in ring for t in _protobuf_tokens(m)]


def test_five_byte_varints_keep_the_low_four_bits_of_their_last_byte() -> None:
    payload = b"".join(_varint(v) for v in (2**28, 2**32 - 1, 0xF0F0F0F0, 0x87654321))
    payload += b"\xff\xff\xff\xff\x7f"  # the 5th byte's high bits fall off a uint32
    assert (
        ring_tokens([_as_read(payload)]).tolist()
        == _protobuf_tokens(payload)
        == [2**28, 2**32 - 1, 0xF0F0F0F0, 0x87654321, 2**32 - 1]
    )


def test_tokens_compare_by_value_whatever_the_encoding() -> None:
    canonical = Tokens.from_values([1, 300])
    padded = _as_read(_varint(1, padding=2) + _varint(300))
    assert padded.packed != canonical.packed
    assert padded == canonical == (1, 300)
    assert canonical != Tokens.from_values([1, 301]) and canonical != (1,)
    assert _as_read(_varint(1, padding=9)) == (1,)  # legal: up to 10 bytes
    assert not Tokens.from_values([]) and list(Tokens.from_values([])) == []
