"""Token ownership: each token owns the range (previous token, token] of the
2^32 ring, wrapping around; a member owns the sum over its tokens.

Sorting every token of a ring is the expensive step (1.28 M tokens at 10k
members), and tokens rarely change, so `OwnershipCache` recomputes a ring only
when some member's tokens differ from the last computation.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import cast

import numpy as np

from ringwatch.cortex.tokens import TOKEN_SPACE, Tokens, ring_tokens

# A member's tokens: packed as read from an item, or plain ints.
TokenList = Sequence[int] | Tokens

_HIGH = int(sys.byteorder == "little")  # where a uint64's high uint32 half sits


def token_ownership(tokens_by_member: Mapping[str, TokenList]) -> dict[str, float]:
    """Share of the token space each member owns, 0..1; members without tokens get 0.

    `Tokens` (packed varints) become one array in a vectorised pass, other
    sequences through Python ints. numpy sorts the ring's tokens (about 10x
    faster than list.sort at 1.28 M tokens). Each token is packed with its
    owner's index (token in the high half of a uint64, index in the low) so that
    equal tokens sort by member name, as the pure-Python definition in the
    tests does.
    """
    names = sorted(tokens_by_member)
    if not names:
        return {}
    ordered = [tokens_by_member[n] for n in names]
    lengths = np.fromiter(map(len, ordered), dtype=np.int64, count=len(names))
    total = int(lengths.sum())
    if total == 0:
        return dict.fromkeys(names, 0.0)
    packed = np.empty(total, dtype=np.uint64)
    # Each packed value's uint32 halves, written and read in place.
    halves = packed.view(np.uint32)
    high, low = halves[_HIGH::2], halves[1 - _HIGH :: 2]
    if all(type(t) is Tokens for t in ordered):
        high[:] = ring_tokens(cast(list[Tokens], ordered))
    else:
        high[:] = np.fromiter(chain.from_iterable(ordered), dtype=np.uint32, count=total)
    low[:] = np.repeat(np.arange(len(names), dtype=np.uint32), lengths)
    packed.sort()
    sorted_tokens = high
    ranges = np.empty(total)
    # Sorted, so no difference is negative; float64 holds every uint32 exactly.
    np.subtract(sorted_tokens[1:], sorted_tokens[:-1], out=ranges[1:])
    ranges[0] = (int(sorted_tokens[0]) - int(sorted_tokens[-1])) % TOKEN_SPACE
    owners = packed.view(np.int64)
    owners &= 0xFFFFFFFF
    # Sums of whole ranges stay below 2^53: float64 holds them exactly.
    owned = np.zeros(len(names))
    np.add.at(owned, owners, ranges)  # a little faster than bincount's weights
    if not owned.any():
        # Every token is the same point: the first holder owns the whole ring.
        owned[owners[0]] = TOKEN_SPACE
    return dict(zip(names, (owned / TOKEN_SPACE).tolist(), strict=True))


class OwnershipCache:
    """Per (table, ring): the last tokens seen and the ownership computed from them."""

    def __init__(self) -> None:
        self._rings: dict[tuple[str, str], tuple[dict[str, TokenList], dict[str, float]]] = {}
        self.computations = 0

    def ownership(
        self, key: tuple[str, str], tokens_by_member: dict[str, TokenList]
    ) -> dict[str, float]:
        """The ring's ownership, computed again only when some member's tokens changed."""
        cached = self._rings.get(key)
        if cached is not None and cached[0] == tokens_by_member:
            return cached[1]
        result = token_ownership(tokens_by_member)
        self.computations += 1
        self._rings[key] = (tokens_by_member, result)
        return result

    def retain(self, keys: set[tuple[str, str]]) -> None:
        """Forget the rings not in `keys` ((table, ring) pairs)."""
        for key in list(self._rings):
            if key not in keys:
                del self._rings[key]
