"""Bad and unusual items, property-based: every scan mixes good items with
undecodable and unusual-but-valid ones, served by the hostile endpoint in good
mode through the real exporter. An addr that is not UTF-8 is unusual but valid:
Cortex's Go code does not check it.

Undecodable items are counted in ringwatch_decode_errors_total{reason} with
its reason (docs/contract.md) and the scan goes on; unusual but valid ones (unknown state
numbers, timestamps in the future or 0, duplicate tokens, no tokens, an empty
ring) are served as members and are not errors. Good + bad = every item:
nothing is silently dropped.
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
import cramjam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import TESTS
from support.exposition import samples, value
from support.hostile import ExporterUnderTest, HostileDynamo, wire_item
from support.items import readable_by_cortex

from ringwatch.cortex.proto import KNOWN_STATES, STATE_NAMES, InstanceDesc

TABLE = "bad-items"
RINGS = ("collectors/ring", "collectors/store-gateway")
NOW = int(time.time())
BAD_KINDS = (
    "random_data",
    "bad_snappy",
    "snappy_length_bomb",
    "bad_protobuf",
    "bad_utf8_protobuf",
    "data_as_string",
    "data_not_base64",
    "version_as_string",
    "version_not_a_number",
    "ttl_as_string",
    "ringkey_as_number",
    "missing_data",
    "missing_version",
    "missing_instancekey",
    "huge_garbage",
)


@dataclass(frozen=True)
class Good:
    ring: str
    member: str
    addr: str
    zone: str
    state: int
    timestamp: int
    registered: int
    tokens: tuple[int, ...]
    version: int
    ttl: int | None

    def item(self) -> dict[str, Any]:
        desc = InstanceDesc(
            addr=self.addr,
            zone=self.zone,
            state=self.state,
            timestamp=self.timestamp,
            registered_timestamp=self.registered,
            tokens=list(self.tokens),
        )
        data = bytes(cramjam.snappy.compress_raw(desc.SerializeToString()))
        return wire_item(self.ring, self.member, data, self.version, self.ttl)


@dataclass(frozen=True)
class Bad:
    kind: str
    ring: str
    member: str
    seed: int

    def item(self) -> dict[str, Any]:
        rnd = random.Random(self.seed)
        good = wire_item(
            self.ring,
            self.member,
            bytes(
                cramjam.snappy.compress_raw(InstanceDesc(addr="10.0.0.1:9095").SerializeToString())
            ),
        )
        kind = self.kind
        if kind == "random_data":
            return wire_item(self.ring, self.member, rnd.randbytes(rnd.randint(0, 300)))
        if kind == "huge_garbage":
            return wire_item(self.ring, self.member, rnd.randbytes(400 * 1024))
        if kind == "bad_snappy":  # a length header longer than a uvarint may be
            return wire_item(self.ring, self.member, b"\xff" * 6 + rnd.randbytes(20))
        if kind == "snappy_length_bomb":  # claims 4 GiB once decompressed
            return wire_item(self.ring, self.member, b"\xff\xff\xff\xff\x0f\x00")
        if kind == "bad_protobuf":  # field 1, length 5, two bytes follow
            return wire_item(
                self.ring, self.member, bytes(cramjam.snappy.compress_raw(b"\x0a\x05ab"))
            )
        if kind == "bad_utf8_protobuf":  # Cortex does not check UTF-8: still a member
            return wire_item(
                self.ring, self.member, bytes(cramjam.snappy.compress_raw(b"\x0a\x02\xff\xfe"))
            )
        if kind == "data_as_string":
            good["Data"] = {"S": good["Data"]["B"]}
        elif kind == "data_not_base64":
            good["Data"] = {"B": "not base64!"}
        elif kind == "version_as_string":
            good["version"] = {"S": "12"}
        elif kind == "version_not_a_number":
            good["version"] = {"N": "twelve"}
        elif kind == "ttl_as_string":
            good["ttl"] = {"S": "soon"}
        elif kind == "ringkey_as_number":
            good["RingKey"] = {"N": "1"}
        elif kind == "missing_data":
            del good["Data"]
        elif kind == "missing_version":
            del good["version"]
        elif kind == "missing_instancekey":
            del good["InstanceKey"]
        else:
            raise AssertionError(kind)
        return good

    def reason(self) -> str | None:
        """The reason this item must be counted under; None if it decodes."""
        if self.kind in ("random_data", "huge_garbage"):
            data = base64.b64decode(self.item()["Data"]["B"])
            try:
                raw = bytes(cramjam.snappy.decompress_raw(data))
            except Exception:
                return "snappy"
            if not readable_by_cortex(raw):
                return "protobuf"
            return None  # random bytes that happen to be a valid InstanceDesc
        if self.kind in ("bad_snappy", "snappy_length_bomb"):
            return "snappy"
        if self.kind == "bad_protobuf":
            return "protobuf"
        if self.kind == "bad_utf8_protobuf":
            return None
        return "attribute"


label_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=12)
tokens = st.lists(
    st.one_of(
        st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 2**31, 2**32 - 1])
    ),  # shared: duplicates
    max_size=12,
)
good_fields = st.fixed_dictionaries(
    {
        "addr": label_text,
        "zone": st.sampled_from(["", "zone-a", "zone-b", 'we"ird\\zone\n']),
        "state": st.one_of(st.sampled_from(sorted(STATE_NAMES)), st.integers(6, 2**31 - 1)),
        "timestamp": st.one_of(
            st.just(0), st.integers(NOW - 7200, NOW), st.integers(NOW + 3600, NOW + 10**6)
        ),  # future: clock skew
        "registered": st.one_of(st.just(0), st.integers(1, NOW)),
        "tokens": tokens.map(tuple),
        "version": st.integers(0, 2**53),
        "ttl": st.none() | st.integers(NOW, NOW + 10**6),
    }
)


@st.composite
def scans(draw: Any) -> tuple[list[Good], list[Bad]]:
    n_good = draw(st.integers(0, 8))
    n_bad = draw(st.integers(0, 6))
    names = draw(
        st.lists(
            label_text.filter(bool), min_size=n_good + n_bad, max_size=n_good + n_bad, unique=True
        )
    )
    goods = [
        Good(ring=draw(st.sampled_from(RINGS)), member=names[i], **draw(good_fields))
        for i in range(n_good)
    ]
    bads = [
        Bad(
            kind=draw(st.sampled_from(BAD_KINDS)),
            ring=draw(st.sampled_from(RINGS)),
            member=names[n_good + i],
            seed=draw(st.integers(0, 2**32)),
        )
        for i in range(n_bad)
    ]
    return goods, bads


def _labels(ring: str, member: str) -> dict[str, str]:
    return {"table": TABLE, "ring": ring, "member": member}


def _one(samples: dict, name: str, **labels: str) -> float:
    want = set(labels.items())
    found = [v for (n, lbs), v in samples.items() if n == name and want <= lbs]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]


def check_served(
    samples: dict, before: dict, goods: list[Good], bads: list[Bad], scanned_at: float
) -> None:
    # Every decode error is counted under its reason, and nothing else is.
    expected = Counter(r for r in (b.reason() for b in bads) if r is not None)
    for reason in ("snappy", "protobuf", "attribute"):
        moved = value(samples, "ringwatch_decode_errors_total", table=TABLE, reason=reason) - value(
            before, "ringwatch_decode_errors_total", table=TABLE, reason=reason
        )
        assert moved == expected[reason], reason

    served = {
        (dict(lbs)["ring"], dict(lbs)["member"])
        for (n, lbs) in samples
        if n == "ringwatch_member_tokens"
    }
    decodable_bads = {(b.ring, b.member) for b in bads if b.reason() is None}
    assert served - decodable_bads == {(g.ring, g.member) for g in goods}
    # Good + bad = every item: nothing silently dropped.
    assert len(served) + sum(expected.values()) == len(goods) + len(bads)

    ownership_by_ring: dict[str, float] = {}
    for g in goods:
        lb = _labels(g.ring, g.member)
        assert _one(samples, "ringwatch_member_heartbeat_timestamp_seconds", **lb) == g.timestamp
        age = _one(samples, "ringwatch_member_heartbeat_age_seconds", **lb)
        assert age == pytest.approx(scanned_at - g.timestamp, abs=0.01)
        if g.timestamp > scanned_at:
            assert age < 0
        assert _one(samples, "ringwatch_member_registered_timestamp_seconds", **lb) == g.registered
        assert _one(samples, "ringwatch_member_tokens", **lb) == len(g.tokens)
        assert _one(samples, "ringwatch_member_cas_writes_total", **lb) == g.version
        state = STATE_NAMES.get(g.state, "UNKNOWN")
        assert _one(samples, "ringwatch_member_state", **lb, state=state) == 1
        for other in KNOWN_STATES:
            if other != state:
                assert _one(samples, "ringwatch_member_state", **lb, state=other) == 0
        if state != "UNKNOWN":
            assert not any(
                n == "ringwatch_member_state"
                and ("state", "UNKNOWN") in lbs
                and set(lb.items()) <= lbs
                for n, lbs in samples
            )
        assert _one(samples, "ringwatch_member_info", **lb, addr=g.addr, member_zone=g.zone) == 1
        share = _one(samples, "ringwatch_member_token_ownership_ratio", **lb)
        assert 0.0 <= share <= 1.0
        if not g.tokens:
            assert share == 0.0
        ownership_by_ring[g.ring] = ownership_by_ring.get(g.ring, 0.0) + share
        if g.ttl is None:
            assert not any(
                n == "ringwatch_member_ttl_timestamp_seconds" and set(lb.items()) <= lbs
                for n, lbs in samples
            )
        else:
            assert _one(samples, "ringwatch_member_ttl_timestamp_seconds", **lb) == g.ttl

    for ring in RINGS:
        members = [g for g in goods if g.ring == ring]
        extra = [b for b in bads if b.ring == ring and b.reason() is None]
        if not members and not extra:
            # An empty ring: no ring series at all, and no error.
            assert not any(
                n.startswith("ringwatch_ring_") and ("ring", ring) in lbs for n, lbs in samples
            )
            continue
        if extra:
            continue  # random bytes decoded by chance: their fields are arbitrary
        counts = Counter(STATE_NAMES.get(g.state, "UNKNOWN") for g in members)
        for state in (*KNOWN_STATES, *(["UNKNOWN"] if counts["UNKNOWN"] else [])):
            assert (
                _one(samples, "ringwatch_ring_members", table=TABLE, ring=ring, state=state)
                == counts[state]
            )
        assert _one(samples, "ringwatch_ring_tokens", table=TABLE, ring=ring) == sum(
            len(g.tokens) for g in members
        )
        has_tokens = any(g.tokens for g in members)
        assert math.isclose(
            ownership_by_ring.get(ring, 0.0), 1.0 if has_tokens else 0.0, abs_tol=1e-9
        )


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_bad_items_are_counted_by_reason_and_every_good_item_is_served() -> None:
    with HostileDynamo() as hostile, asyncio.Runner() as runner:
        rw = ExporterUnderTest(
            [
                "--dynamodb.table",
                TABLE,
                "--dynamodb.region",
                "us-east-1",
                "--dynamodb.endpoint-url",
                hostile.url,
                "--scan.timeout",
                "20s",
                "--dynamodb.request-timeout",
                "10s",
            ]
        )
        runner.run(rw.__aenter__())
        session = runner.run(_session())

        async def metrics() -> dict:
            async with session.get(rw.base_url + "/metrics") as resp:
                assert resp.status == 200
                return samples(await resp.text())

        @settings(
            max_examples=int(os.environ.get("RINGWATCH_HYPOTHESIS_EXAMPLES", "100")),
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(scans())
        def check(case: tuple[list[Good], list[Bad]]) -> None:
            goods, bads = case
            items = [g.item() for g in goods] + [b.item() for b in bads]
            random.Random(len(items)).shuffle(items)
            hostile.items = items
            before = runner.run(metrics())
            runner.run(rw.scan())
            view = rw.exporter.snapshot.table(TABLE)
            assert view.ok, view.error
            after = runner.run(metrics())
            assert value(after, "ringwatch_up", table=TABLE) == 1
            assert (
                value(after, "ringwatch_scans_total", table=TABLE, result="success")
                - value(before, "ringwatch_scans_total", table=TABLE, result="success")
            ) == 1
            check_served(after, before, goods, bads, view.scanned_at)

        try:
            check()
        finally:
            runner.run(session.close())
            runner.run(rw.__aexit__())


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


def test_snappy_length_bomb_is_a_decode_error_even_under_a_memory_limit() -> None:
    """A six-byte Data that claims 4 GiB once decompressed must not make ringwatch
    allocate 4 GiB: under an address-space limit (a small node, strict overcommit)
    that allocation aborts the whole process instead of raising."""
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        f"import base64, sys; sys.path.insert(0, {str(TESTS)!r})\n"
        "from support.oracle import decode_item\n"
        "from ringwatch.cortex.decode import DecodeError, ItemDecoder\n"
        "item = {'RingKey': {'S': 'r'}, 'InstanceKey': {'S': 'm'}, 'version': {'N': '1'},"
        " 'Data': {'B': base64.b64encode(b'\\xff\\xff\\xff\\xff\\x0f\\x00').decode()}}\n"
        "for decode in (decode_item, ItemDecoder().decode):\n"
        "    try:\n        decode(item)\n    except DecodeError as err:\n"
        "        print(err.reason)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.split() == ["snappy", "snappy"]
