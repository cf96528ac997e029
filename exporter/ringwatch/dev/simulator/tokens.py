"""Random ring tokens, unique within one ring."""

from __future__ import annotations

import random
import threading

from ringwatch.cortex.tokens import TOKEN_SPACE


class TokenPool:
    """Random ring tokens, unique across the simulated ring."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[int] = set()
        self._lock = threading.Lock()

    def draw(self, count: int) -> list[int]:
        """`count` sorted tokens that no other member of the ring holds."""
        with self._lock:
            if len(self._used) + count > TOKEN_SPACE:
                raise ValueError("token space exhausted")
            fresh: set[int] = set()
            while len(fresh) < count:
                token = self._rng.getrandbits(32)
                if token not in self._used:
                    fresh.add(token)
            self._used |= fresh
            return sorted(fresh)

    def release(self, tokens: list[int]) -> None:
        """Give tokens back when their member leaves."""
        with self._lock:
            self._used.difference_update(tokens)
