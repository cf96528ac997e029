"""A member's tokens kept as protobuf packed varints, never as Python ints.

A 10k-member ring holds 1.28 M tokens: as tuples of Python ints that is ~50 MB
and a few microseconds a member to build. `Tokens` keeps the packed field's
bytes as they came out of `Data` (about 5 bytes a token) and the count; a whole
ring's tokens become one numpy array in a single vectorised pass
(`ring_tokens`) when ownership needs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

# Tokens are points on a ring of 2^32 (uint32): the token space a member's share is of.
TOKEN_SPACE = 1 << 32

# `ring_tokens` joins a 1-byte varint before the ring's (so every varint starts
# one past the end of another) and zeros after (so 4-byte reads stay inside).
_LEAD = b"\x00"
_PADDING = bytes(4)


def _encode(values: Iterable[int]) -> bytes:
    out = bytearray()
    for value in values:
        value &= 0xFFFFFFFF
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)


class Tokens:
    """The tokens of one member: packed varint bytes and how many tokens they hold.

    Compares equal to a `Tokens` or a tuple with the same values in the same order.
    """

    __slots__ = ("_len", "packed")

    def __init__(self, packed: bytes, length: int) -> None:
        self.packed = packed
        self._len = length

    @classmethod
    def from_values(cls, values: Iterable[int]) -> Tokens:
        """Canonical packed encoding of uint32 values (as the reference decoder keeps them)."""
        values = tuple(values)
        return cls(_encode(values), len(values))

    def array(self) -> np.ndarray:
        """The tokens as a uint32 numpy array."""
        return ring_tokens([self])

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[int]:
        return iter(self.array().tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Tokens):
            if self is other or self.packed == other.packed:
                return True
            return self._len == other._len and tuple(self) == tuple(other)
        if isinstance(other, tuple):
            return len(other) == self._len and tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Tokens({tuple(self)!r})"


def ring_tokens(members: Sequence[Tokens]) -> np.ndarray:
    """Every member's tokens, in order, as one uint32 array: one vectorised pass
    over the concatenated varints (each member's bytes end on a varint's last byte)."""
    parts = [t.packed for t in members]
    parts.insert(0, _LEAD)
    parts.append(_PADDING)
    joined = b"".join(parts)
    size = len(joined) - len(_PADDING)
    if size == len(_LEAD):
        return np.zeros(0, dtype=np.uint32)
    buf = np.frombuffer(joined, dtype=np.uint8)
    # Where each varint starts: one past where the one before it ends (the
    # leading 1-byte varint stands before the first).
    starts = np.flatnonzero(buf[:size] < 0x80)[:-1]
    starts += 1
    # Each varint's first four bytes as one little-endian uint32, read in place
    # through a view with one-byte strides (indexed, not `take`n: `take` would
    # first copy the whole unaligned view).
    words = np.ndarray((size,), dtype="<u4", buffer=joined, strides=(1,))
    values = words[starts]
    # Keep the value bits of the bytes up to the first that ends the varint (all
    # four when none does): the lowest clear continuation bit, and all below it.
    mask = values & 0x80808080
    mask ^= 0x80808080
    fifth = np.negative(mask)
    mask &= fifth
    np.subtract(mask, 1, out=fifth)
    mask ^= fifth
    mask &= 0x7F7F7F7F
    values &= mask
    # None of the four ends it (the lowest bit was 0, so 0 - 1 has bit 31):
    # the fifth byte's value bits go to bit 28, the rest past the 32nd.
    fifth >>= 31
    fifth <<= 28
    # Close the gaps the continuation bits leave, in pairs then in fours:
    # b0 | b1<<8 | b2<<16 | b3<<24  ->  b0 | b1<<7 | b2<<16 | b3<<23  ->  b0 | .. | b3<<21.
    scratch = mask
    np.bitwise_and(values, 0xFF00FF00, out=scratch)
    scratch >>= 1
    values -= scratch
    np.bitwise_and(values, 0xFFFF0000, out=scratch)
    values ^= scratch
    scratch >>= 2
    values |= scratch
    # Each varint's fifth byte, into the scratch memory now free.
    byte = np.take(buf[4:], starts, mode="clip", out=scratch.view(np.uint8)[: len(starts)])
    np.multiply(byte, fifth, out=fifth, dtype=np.uint32)
    values |= fifth
    return values
