"""A synthetic Cortex ring table, pre-rendered as DynamoDB Scan/Query pages.

Items are exactly Cortex's format (snappy-compressed `InstanceDesc` in `Data`,
`version` N), 128 random tokens per member by default (Data about 680 bytes,
like a real ingester), spread over several rings. Pages follow DynamoDB's
rule: a page stops once the items read reach 1 MB (item size = attribute
names + values, binary counted as raw bytes), and ends with LastEvaluatedKey.

Generation `g` of the table is the same members `g` heartbeats later: every
`timestamp` moves by HEARTBEAT seconds and every `version` by one, tokens
unchanged, as between two scans of a live ring.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass

import cramjam
import orjson

from ringwatch.cortex.proto import InstanceDesc

PAGE_LIMIT = 1 << 20
HEARTBEAT = 15
# Share of the members in each ring: a big table keeps several rings side by side.
RINGS = (
    ("collectors/ring", 0.5),
    ("collectors/store-gateway", 0.25),
    ("collectors/compactor", 0.15),
    ("collectors/distributor", 0.10),
)
# Every member in one ring: Cortex's ingesters are one ring, the largest there is.
ONE_RING = (("collectors/ring", 1.0),)
_PREFIX = {
    "collectors/ring": "ingester",
    "collectors/store-gateway": "store-gateway",
    "collectors/compactor": "compactor",
    "collectors/distributor": "distributor",
}


@dataclass(frozen=True)
class Spec:
    ring: str
    member: str
    addr: str
    zone: str
    state: int
    timestamp: int
    registered: int
    tokens: tuple[int, ...]
    version: int


def make_members(
    n: int,
    tokens: int = 128,
    now: int = 1_800_000_000,
    seed: int = 7,
    rings: tuple[tuple[str, float], ...] = RINGS,
) -> list[Spec]:
    """N members spread over `rings` (name, share), 128 random tokens each."""
    rng = random.Random(seed)
    specs = []
    counts = [int(n * share) for _, share in rings]
    counts[0] += n - sum(counts)
    for (ring, _), count in zip(rings, counts, strict=True):
        for i in range(count):
            zone = f"zone-{'abc'[i % 3]}"
            roll = rng.random()
            state = 0 if roll < 0.995 else (1 if roll < 0.997 else 3)
            # About 1% of members stopped heartbeating ten minutes ago.
            age = 600 + rng.randrange(60) if rng.random() < 0.01 else rng.randrange(HEARTBEAT)
            specs.append(
                Spec(
                    ring=ring,
                    member=f"{_PREFIX[ring]}-{zone}-{i}",
                    addr=_random_addr(rng),
                    zone=zone,
                    state=state,
                    timestamp=now - age,
                    registered=now - rng.randrange(86400, 30 * 86400),
                    tokens=tuple(sorted(rng.getrandbits(32) for _ in range(tokens))),
                    version=rng.randrange(1000, 500_000),
                )
            )
    return specs


def _item(spec: Spec, generation: int) -> tuple[dict, int]:
    desc = InstanceDesc(
        addr=spec.addr,
        timestamp=spec.timestamp + HEARTBEAT * generation,
        state=spec.state,
        tokens=spec.tokens,
        zone=spec.zone,
        registered_timestamp=spec.registered,
    )
    data = bytes(cramjam.snappy.compress_raw(desc.SerializeToString()))
    version = str(spec.version + generation)
    item = {
        "RingKey": {"S": spec.ring},
        "InstanceKey": {"S": spec.member},
        "Data": {"B": base64.b64encode(data).decode()},
        "version": {"N": version},
    }
    size = 7 + len(spec.ring) + 11 + len(spec.member) + 4 + len(data) + 7 + len(version) // 2 + 1
    return item, size


def _pages(items: list[tuple[dict, int]]) -> list[bytes]:
    pages: list[bytes] = []
    batch: list[dict] = []
    used = 0
    for index, (item, size) in enumerate(items):
        batch.append(item)
        used += size
        last = index == len(items) - 1
        if used >= PAGE_LIMIT or last:
            body: dict = {
                "Count": len(batch),
                "ScannedCount": len(batch),
                "Items": batch,
                "ConsumedCapacity": {"CapacityUnits": used / 4096 / 2},
            }
            if not last:
                body["LastEvaluatedKey"] = {
                    "RingKey": item["RingKey"],
                    "InstanceKey": item["InstanceKey"],
                }
            pages.append(orjson.dumps(body))
            batch, used = [], 0
    if not pages:
        pages.append(
            orjson.dumps(
                {
                    "Count": 0,
                    "ScannedCount": 0,
                    "Items": [],
                    "ConsumedCapacity": {"CapacityUnits": 0.5},
                }
            )
        )
    return pages


class RingTable:
    """Pages of one table, per generation; Query pages per ring, made on first use."""

    def __init__(self, specs: list[Spec], generations: int = 2) -> None:
        self.specs = specs
        self.generations = generations
        self._items = [[_item(s, g) for s in specs] for g in range(generations)]
        self.scan_pages = [_pages(items) for items in self._items]
        self._query_pages: dict[tuple[int, str], list[bytes]] = {}

    def query_pages(self, generation: int, ring: str) -> list[bytes]:
        key = (generation, ring)
        if key not in self._query_pages:
            self._query_pages[key] = _pages(
                [
                    (item, size)
                    for item, size in self._items[generation]
                    if item["RingKey"]["S"] == ring
                ]
            )
        return self._query_pages[key]

    @property
    def scan_bytes(self) -> int:
        return sum(len(p) for p in self.scan_pages[0])


def _random_addr(rng: random.Random) -> str:
    """A private address and Cortex's gRPC port, as an ingester registers."""
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}:9095"
