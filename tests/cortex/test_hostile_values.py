"""Items an attacker or an odd Cortex KV layout can store: each is either a member
with every value kept, or one counted decode error with its own reason; never an
exception out of the decoder, a garbage member, or a member held twice."""

from __future__ import annotations

import base64
from typing import Any

import cramjam
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from support.exposition import series
from support.hostile import wire_item
from support.items import varint
from support.oracle import decode_item

from ringwatch.cortex.decode import DecodeError, ItemDecoder
from ringwatch.cortex.proto import InstanceDesc
from ringwatch.render.exposition import Renderer
from ringwatch.serve.scanloop import openmetrics_from_text
from ringwatch.snapshot.builder import SnapshotBuilder

RING = "collectors/ring"


def data(desc: Any) -> bytes:
    return bytes(cramjam.snappy.compress_raw(desc.SerializeToString()))


def member_item(member: str = "ingester-1", version: str = "7", **desc: Any) -> dict[str, Any]:
    fields = {"addr": "10.0.0.1:9095", "timestamp": 1_700_000_000, "tokens": [1, 2]} | desc
    item = wire_item(RING, member, data(InstanceDesc(**fields)))
    item["version"] = {"N": version}
    return item


def both_decoders(item: dict[str, Any]) -> list[Any]:
    """decode_item and ItemDecoder (its first and its cached pass) on the same item:
    each a Member or the DecodeError it raised."""
    decoder = ItemDecoder()
    results = []
    for decode in (decode_item, decoder.decode, decoder.decode):
        try:
            results.append(decode(item))
        except DecodeError as err:
            results.append(err)
    return results


@pytest.mark.parametrize("version", ["1" * 5000, "9" * 200, "1e200", "-1e130"])
def test_a_version_no_dynamodb_number_can_hold_is_a_value_error(version: str) -> None:
    for result in both_decoders(member_item(version=version)):
        assert isinstance(result, DecodeError), result
        assert result.reason == "value"
        assert (result.ring, result.member) == (RING, "ingester-1")


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (str(2**64), 2**64),
        (str(2**64 + 12345), 2**64 + 12345),
        ("9" * 38, int("9" * 38)),
        ("1e125", 10**125),
        ("9.9999999999999999999999999999999999999E+125", int("9" * 38) * 10**88),
        ("1.0", 1),
        ("1E2", 100),
        ("-0", 0),
    ],
)
def test_a_whole_version_dynamodb_can_hold_is_kept_exactly(version: str, expected: int) -> None:
    for result in both_decoders(member_item(version=version)):
        assert not isinstance(result, DecodeError), result
        assert result.version == expected


@pytest.mark.parametrize("version", ["-1", "-7", "-1e3", "-99999999999999999999"])
def test_a_negative_version_is_a_value_error_not_a_negative_counter(version: str) -> None:
    for result in both_decoders(member_item(version=version)):
        assert isinstance(result, DecodeError), result
        assert result.reason == "value"
        assert "negative" in result.detail


@pytest.mark.parametrize("version", ["1.5", "0.5", ".5", "7.25e0", "1e-3"])
def test_a_fractional_version_is_a_value_error(version: str) -> None:
    for result in both_decoders(member_item(version=version)):
        assert isinstance(result, DecodeError), result
        assert result.reason == "value"


@pytest.mark.parametrize("version", ["nan", "inf", "0x10", " 7", "7 ", "1_000", "+7", "seven"])
def test_text_that_is_no_dynamodb_number_is_an_attribute_error(version: str) -> None:
    for result in both_decoders(member_item(version=version)):
        assert isinstance(result, DecodeError), result
        assert result.reason == "attribute"


def test_a_negative_ttl_is_kept_it_is_a_gauge() -> None:
    item = member_item() | {"ttl": {"N": "-5"}}
    for result in both_decoders(item):
        assert not isinstance(result, DecodeError), result
        assert result.ttl == -5


HOSTILE_VERSIONS = {
    "negative": "-1",
    "fraction": "2.5",
    "huge": "1e125",
    "beyond-64-bits": str(2**64 + 1),
    "plain": "7",
}


def test_the_exposition_of_hostile_versions_parses_as_text_and_openmetrics() -> None:
    """Through the real decoder and renderer: refused values are counted, kept ones are
    exact, and prometheus_client's text and OpenMetrics parsers both read the body."""
    items = [member_item(name, version=v) for name, v in HOSTILE_VERSIONS.items()]
    items.append(member_item("ttl-negative") | {"ttl": {"N": "-5"}})
    snapshot = SnapshotBuilder(stale_after=60).build([_read(items)], None, 0.0)
    [table] = snapshot.tables
    assert sorted((e.reason, e.member) for e in table.decode_errors) == [
        ("value", "fraction"),
        ("value", "negative"),
    ]
    text = Renderer().render(snapshot.tables).decode()
    as_text = series(text, "ringwatch_member_cas_writes_total")
    openmetrics = openmetrics_from_text(text.encode()).decode() + "# EOF\n"
    as_openmetrics = {
        frozenset(s.labels.items()): s.value
        for family in openmetrics_families(openmetrics)
        for s in family.samples
        if s.name == "ringwatch_member_cas_writes_total"
    }
    for found in (as_text, as_openmetrics):
        by_member = {dict(labels)["member"]: v for labels, v in found.items()}
        assert by_member == {
            "huge": 10**125,
            "beyond-64-bits": 2**64 + 1,
            "plain": 7,
            "ttl-negative": 7,
        }
    ttl = series(text, "ringwatch_member_ttl_timestamp_seconds")
    assert list(ttl.values()) == [-5]


def test_an_exception_the_decoder_did_not_foresee_costs_one_item_not_the_scan() -> None:
    class BuggyDecoder(ItemDecoder):
        def decode(self, item: Any) -> Any:
            if item["InstanceKey"]["S"] == "boom":
                raise ZeroDivisionError("a bug")
            return super().decode(item)

    builder = SnapshotBuilder(stale_after=60, decoder=BuggyDecoder())
    snapshot = builder.build([_read([member_item("ok"), member_item("boom")])], None, 0.0)
    table = snapshot.tables[0]
    assert [v.member.name for v in table.members] == ["ok"]
    [error] = table.decode_errors
    assert (error.reason, error.ring, error.member) == ("unexpected", RING, "boom")
    assert "ZeroDivisionError" in error.detail


def test_the_snapshot_holds_one_ring_member_once_whatever_the_input() -> None:
    first = member_item("ingester-1", version="3")
    as_bytes = dict(first)
    as_bytes["Data"] = {"B": base64.b64decode(first["Data"]["B"])}  # another encoding
    repeated = [first, as_bytes, first, member_item("ingester-2")]
    snapshot = SnapshotBuilder(stale_after=60).build([_read(repeated)], None, 0.0)
    table = snapshot.tables[0]
    [ring] = table.rings
    assert [v.member.name for v in ring.members] == ["ingester-1", "ingester-2"]
    assert sum(ring.state_counts.values()) == 2
    assert ring.tokens == 4
    assert [(e.reason, e.member) for e in table.decode_errors] == [
        ("duplicate", "ingester-1"),
        ("duplicate", "ingester-1"),
    ]


@pytest.mark.parametrize("field", ["addr", "zone"])
def test_bytes_that_are_not_utf8_in_addr_or_zone_keep_the_member_watched(field: str) -> None:
    good = InstanceDesc(
        addr="10.0.0.1:9095", zone="zone-a", timestamp=1_700_000_000, tokens=[5]
    ).SerializeToString()
    tag = {"addr": b"\x0a", "zone": b"\x3a"}[field]
    raw = good + tag + b"\x06zo\xffne\xfe"  # the field again: the last value wins
    item = wire_item(RING, "ingester-1", bytes(cramjam.snappy.compress_raw(raw)))
    for result in both_decoders(item):
        assert not isinstance(result, DecodeError), result
        assert getattr(result, field) == "zo\ufffdne\ufffd"
        assert result.heartbeat_timestamp == 1_700_000_000
        assert result.tokens == (5,)


def _ring_desc(members: dict[str, Any]) -> bytes:
    """Cortex's `Desc`: `map<string, InstanceDesc> ingesters = 1`, as Go writes it."""
    out = b""
    for name, desc in members.items():
        value = desc.SerializeToString()
        entry = b"\x0a" + bytes([len(name)]) + name.encode() + b"\x12" + varint(len(value)) + value
        out += b"\x0a" + varint(len(entry)) + entry
    return out


@pytest.mark.parametrize("count", [1, 3])
def test_a_whole_ring_desc_in_data_is_a_decode_error_of_its_own(count: int) -> None:
    members = {
        f"ingester-{i}": InstanceDesc(
            addr=f"10.0.0.{i}:9095", zone="zone-a", timestamp=1_700_000_000 + i, tokens=[i, i + 100]
        )
        for i in range(count)
    }
    item = wire_item(RING, "ring", bytes(cramjam.snappy.compress_raw(_ring_desc(members))))
    for result in both_decoders(item):
        assert isinstance(result, DecodeError), result
        assert result.reason == "ring_desc"
        assert f"{count} instances" in result.detail


def test_a_member_with_only_an_address_is_still_a_member() -> None:
    """The ring Desc check must not catch a real (if idle) InstanceDesc."""
    for addr in ("10.0.0.1:9095", "ingester-1.ingester.cortex.svc:9095", "[::1]:9095", "x"):
        item = wire_item(RING, "ingester-1", data(InstanceDesc(addr=addr)))
        for result in both_decoders(item):
            assert not isinstance(result, DecodeError), (addr, result)
            assert result.addr == addr


def test_a_246_kb_item_that_decompresses_to_5_mib_is_decoded() -> None:
    """Snappy expands at most ~21.3x: a legitimate DynamoDB-sized item may
    decompress to several MiB (here a zone of 5 MiB)."""
    desc = InstanceDesc(
        addr="10.0.0.1:9095", timestamp=1_700_000_000, zone="z" * (5 << 20), tokens=[1]
    )
    item = wire_item(RING, "ingester-1", data(desc))
    stored = len(base64.b64decode(item["Data"]["B"]))
    print(f"stored {stored} bytes, decompressed {len(desc.SerializeToString())} bytes")
    assert stored < 400 * 1024
    for result in both_decoders(item):
        assert not isinstance(result, DecodeError), result
        assert len(result.zone) == 5 << 20


def test_a_block_claiming_more_than_snappy_can_expand_to_is_refused() -> None:
    # A 10-byte block claiming 1 MiB: no snappy stream of 10 bytes expands that far.
    block = varint(1 << 20) + b"\x00a" + b"\xfe\x01\x00" * 2
    item = wire_item(RING, "ingester-1", block)
    for result in both_decoders(item):
        assert isinstance(result, DecodeError) and result.reason == "snappy", result


def _read(items: list[dict[str, Any]]) -> Any:
    from ringwatch.dynamodb.reader import TableRead

    return TableRead(
        table="t", started_at=0.0, duration=0.0, items=items, result="success", error=None
    )
