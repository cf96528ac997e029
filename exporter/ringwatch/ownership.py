"""Token ownership: each token owns the range (previous token, token] of the
2^32 ring, wrapping around; a member owns the sum over its tokens.

Sorting every token of a ring is the expensive step (1.28 M tokens at 10k
members), and tokens rarely change, so `OwnershipCache` recomputes a ring only
when some member's tokens differ from the last computation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

RING_SIZE = 1 << 32
_INDEX_BITS = 24  # up to 16 M members per ring


def token_ownership(tokens_by_member: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """Share of the token space each member owns, 0..1; members without tokens get 0."""
    names = sorted(tokens_by_member)
    owned = [0] * len(names)
    # One int per token, sortable by token then member: the sort stays in C.
    packed = [
        (token << _INDEX_BITS) | index
        for index, name in enumerate(names)
        for token in tokens_by_member[name]
    ]
    if packed:
        packed.sort()
        mask = (1 << _INDEX_BITS) - 1
        previous = packed[-1] >> _INDEX_BITS
        for entry in packed:
            token = entry >> _INDEX_BITS
            owned[entry & mask] += (token - previous) % RING_SIZE
            previous = token
        if not any(owned):
            # Every token is the same point: the first holder owns the whole ring.
            owned[packed[0] & mask] = RING_SIZE
    return {name: owned[index] / RING_SIZE for index, name in enumerate(names)}


class OwnershipCache:
    """Per (table, ring): the last tokens seen and the ownership computed from them."""

    def __init__(self) -> None:
        self._rings: dict[tuple[str, str], tuple[dict[str, tuple[int, ...]],
                                                 dict[str, float]]] = {}
        self.computations = 0

    def ownership(self, key: tuple[str, str],
                  tokens_by_member: dict[str, tuple[int, ...]]) -> dict[str, float]:
        cached = self._rings.get(key)
        if cached is not None and cached[0] == tokens_by_member:
            return cached[1]
        result = token_ownership(tokens_by_member)
        self.computations += 1
        self._rings[key] = (tokens_by_member, result)
        return result

    def retain(self, keys: set[tuple[str, str]]) -> None:
        for key in list(self._rings):
            if key not in keys:
                del self._rings[key]
