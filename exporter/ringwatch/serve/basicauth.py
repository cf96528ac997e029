"""`basic_auth_users` of the web config: bcrypt off the event loop, in a bounded queue.

bcrypt runs in one worker thread, never on the event loop, so a flood of wrong
passwords costs one core at most. Results (successes and failures) are cached by a
keyed digest of user, hash and password: a scrape with the right password waits
for bcrypt once per process.

Which user names exist does not show in the timing: an unknown user's password is
checked against the costliest hash in the file, and every refusal of a known user
is padded to the time a check of that costliest hash takes (bcrypt's time doubles
with each cost step).

Under a flood of wrong passwords the right one still gets through: at most
`max_pending` new credentials wait for bcrypt (more get 429 at once), and a
credential asked for again (a scraper retrying after a 429, as the answer's
Retry-After tells it) goes ahead of every new one. A flood of new wrong passwords
never repeats one (and a repeated one is answered from the cache once checked).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import bcrypt

# What the bcrypt library accepts is 4..31. Above 16 one check takes more than ~4 s
# on a current core (0.25 s at 12, twice as long each step), most of Prometheus's
# default 10 s scrape timeout, and a queue of them never drains: refused at start.
MIN_BCRYPT_COST = 4
MAX_BCRYPT_COST = 16
_BCRYPT_HASH = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")


class AuthBusy(Exception):
    """Too many new credentials are waiting for bcrypt; try again later."""


def bcrypt_hash_problem(hashed: str) -> str | None:
    """Why `hashed` cannot be used as a basic_auth_users hash, or None if it can."""
    match = _BCRYPT_HASH.match(hashed)
    if match is None:
        return "is not a bcrypt hash ($2a$, $2b$ or $2y$, cost, 53 characters)"
    cost = int(match.group(1))
    if not MIN_BCRYPT_COST <= cost <= MAX_BCRYPT_COST:
        return (
            f"has bcrypt cost {cost}; ringwatch accepts {MIN_BCRYPT_COST} to "
            f"{MAX_BCRYPT_COST} (one check at {MAX_BCRYPT_COST + 1} takes longer than "
            "a scrape may wait)"
        )
    # The salt is checked by bcrypt itself, at the cheapest cost (a millisecond).
    cheapest_salt = f"{hashed[:4]}{MIN_BCRYPT_COST:02d}{hashed[6:29]}".encode()
    try:
        bcrypt.hashpw(b"", cheapest_salt)
    except ValueError:
        return "is not a valid bcrypt hash (its salt does not decode)"
    return None


def bcrypt_cost(hashed: bytes) -> int:
    """The cost of a hash that passed `bcrypt_hash_problem`."""
    return int(hashed[4:6])


def _timed_checkpw(password: bytes, hashed: bytes) -> tuple[bool, float]:
    started = time.perf_counter()
    try:
        matched = bcrypt.checkpw(password, hashed)
    except ValueError:
        matched = False
    return matched, time.perf_counter() - started


@dataclass
class _Check:
    password: bytes
    hashed: bytes
    result: asyncio.Future[tuple[bool, float]]


@dataclass
class BasicAuth:
    """basic_auth_users: user -> bcrypt hash (each checked by `bcrypt_hash_problem`)."""

    users: dict[str, bytes]
    cache_size: int = 4096
    max_pending: int = 4
    max_retrying: int = 64
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    # Two caches, so that a flood of wrong passwords never evicts a right one.
    _matched: OrderedDict[bytes, None] = field(default_factory=OrderedDict)
    _refused: OrderedDict[bytes, None] = field(default_factory=OrderedDict)
    # Credentials asked for before, answered or not: a retry goes first.
    _asked: OrderedDict[bytes, None] = field(default_factory=OrderedDict)
    _pending: dict[bytes, _Check] = field(default_factory=dict)
    _retrying: deque[bytes] = field(default_factory=deque)
    _new: deque[bytes] = field(default_factory=deque)
    _costliest_seconds: float = 0.0
    _worker: asyncio.Task[None] | None = None
    _executor: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        self.max_cost = max(map(bcrypt_cost, self.users.values()))
        self._costliest = next(h for h in self.users.values() if bcrypt_cost(h) == self.max_cost)

    def _digest(self, user: str, hashed: bytes, password: str) -> bytes:
        message = b"\0".join(
            part.hex().encode() for part in (user.encode(), hashed, password.encode())
        )
        return hmac.new(self._key, message, hashlib.sha256).digest()

    async def check(self, user: str, password: str) -> bool:
        """True if the user exists and the password matches its hash; AuthBusy if
        the check cannot be queued now."""
        hashed = self.users.get(user)
        known = hashed is not None
        if hashed is None:
            hashed = self._costliest
        digest = self._digest(user, hashed, password)
        if digest in self._matched:
            self._matched.move_to_end(digest)
            return known
        if digest in self._refused:
            self._refused.move_to_end(digest)
            return False
        check = self._pending.get(digest) or self._enqueue(digest, password, hashed)
        # Shielded: a client that hangs up does not cancel the check others share.
        matched, seconds = await asyncio.shield(check.result)
        if known and matched:
            return True
        # A refusal takes as long as a check of the costliest hash: the last one's
        # time, or before there was one, this one's scaled (bcrypt doubles per step).
        costliest = self._costliest_seconds or seconds * 2 ** (self.max_cost - bcrypt_cost(hashed))
        await asyncio.sleep(max(0.0, costliest - seconds))
        return False

    def _enqueue(self, digest: bytes, password: str, hashed: bytes) -> _Check:
        queue, bound = (
            (self._retrying, self.max_retrying)
            if digest in self._asked
            else (self._new, self.max_pending)
        )
        self._asked[digest] = None
        self._asked.move_to_end(digest)
        while len(self._asked) > self.cache_size:
            self._asked.popitem(last=False)
        if len(queue) >= bound:
            raise AuthBusy
        loop = asyncio.get_running_loop()
        check = self._pending[digest] = _Check(password.encode(), hashed, loop.create_future())
        queue.append(digest)
        if self._worker is None:
            self._worker = loop.create_task(self._work(), name="ringwatch-bcrypt-queue")
        return check

    async def _work(self) -> None:
        """Run the queued checks one at a time, retries first, in the bcrypt thread."""
        loop = asyncio.get_running_loop()
        if self._executor is None:
            # One thread: bcrypt never takes more than one core from scans and scrapes.
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="ringwatch-bcrypt")
        try:
            while self._retrying or self._new:
                digest = (self._retrying or self._new).popleft()
                check = self._pending[digest]
                try:
                    result = await loop.run_in_executor(
                        self._executor, _timed_checkpw, check.password, check.hashed
                    )
                except BaseException:
                    check.result.cancel()  # its clients get 429 (shutdown only)
                    raise
                finally:
                    del self._pending[digest]
                check.result.set_result(result)
                if bcrypt_cost(check.hashed) == self.max_cost:
                    self._costliest_seconds = result[1]
                cache = self._matched if result[0] else self._refused
                cache[digest] = None
                while len(cache) > self.cache_size:
                    cache.popitem(last=False)
        finally:
            self._worker = None

    def close(self) -> None:
        """Stop the queue and the bcrypt thread (a check under way finishes on its own)."""
        if self._worker is not None:
            self._worker.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
