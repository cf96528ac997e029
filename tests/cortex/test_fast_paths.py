"""The hot path's shortcuts (decode cache, reused render blocks, reused member
index) give exactly what the plain path gives, on real and on odd items."""

from __future__ import annotations

import asyncio
import base64
import copy
import gzip
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import cramjam
import msgspec
import orjson
import pytest
from support.cortexdata import DUMPS, load_dump
from support.harness import running_exporter
from support.items import varint
from support.oracle import decode_item

from ringwatch.cortex.decode import DecodeError, ItemDecoder, WireItem, read_items_json
from ringwatch.cortex.proto import InstanceDesc
from ringwatch.dynamodb.reader import TableRead
from ringwatch.render.exposition import Renderer
from ringwatch.serve import http as ringweb
from ringwatch.snapshot.builder import SnapshotBuilder


def _item(
    raw_proto: bytes, member: str = "ingester-1", data_as_bytes: bool = False
) -> dict[str, Any]:
    data = bytes(cramjam.snappy.compress_raw(raw_proto))
    return {
        "RingKey": {"S": "collectors/ring"},
        "InstanceKey": {"S": member},
        "Data": {"B": data if data_as_bytes else base64.b64encode(data).decode()},
        "version": {"N": "7"},
    }


def _packed(tokens: list[int]) -> bytes:
    payload = b"".join(varint(t) for t in tokens)
    return b"\x32" + varint(len(payload)) + payload


HEAD = InstanceDesc(addr="10.0.0.1:9095", timestamp=1_700_000_000, state=0).SerializeToString()
ODD_ENCODINGS = {
    "plain": HEAD + _packed([5, 300, 70000]),
    "unpacked tokens": HEAD + b"".join(b"\x30" + varint(t) for t in (5, 300, 70000)),
    "two packed chunks": HEAD + _packed([5, 300]) + _packed([70000]),
    "packed then unpacked": HEAD + _packed([5]) + b"\x30" + varint(9),
    "unknown field": HEAD + _packed([1, 2]) + b"\x48\x01",
    "repeated addr": HEAD + _packed([1]) + b"\x0a\x03abc",
    "explicit default": HEAD + b"\x18\x00" + _packed([1]),
    "no tokens": HEAD,
    "unknown state": InstanceDesc(addr="a", state=42).SerializeToString() + _packed([3]),
    "truncated tokens": HEAD + b"\x32\x02\x80",
    "11-byte varint": HEAD + b"\x32\x0c" + b"\x81" * 10 + b"\x01" + varint(5),
    "10-byte varint": HEAD + b"\x32\x0b" + b"\x81" * 9 + b"\x01" + varint(5),
    "not protobuf": b"\xff\xff\xff",
}


def _outcome(decode: Callable[[Any], Any], item: Any) -> Any:
    """What `decode` makes of `item`: a Member, or the DecodeError's reason, detail,
    ring and member."""
    try:
        return decode(item)
    except DecodeError as err:
        return (err.reason, err.detail, err.ring, err.member)


def _same(item: dict[str, Any], decoder: ItemDecoder) -> None:
    assert _outcome(decoder.decode, item) == _outcome(decode_item, copy.deepcopy(item))


@pytest.mark.parametrize("name", sorted(ODD_ENCODINGS))
def test_cached_decoder_matches_decode_item_on_odd_encodings(name: str) -> None:
    decoder = ItemDecoder()
    # The same tokens seen first in a plain item must not leak into an odd one.
    decoder.start_scan()
    _same(_item(ODD_ENCODINGS["plain"], "warm"), decoder)
    for scan in range(3):
        decoder.start_scan()
        _same(_item(ODD_ENCODINGS[name]), decoder)
        _same(_item(ODD_ENCODINGS[name], data_as_bytes=True), decoder)
        _same(_item(ODD_ENCODINGS["plain"], f"other-{scan}"), decoder)


def test_cached_decoder_matches_decode_item_on_bad_attributes() -> None:
    good = _item(ODD_ENCODINGS["plain"])
    bad = [
        {**good, "Data": {"B": "not base64!"}},
        {**good, "Data": {"B": "QUJD===="}},
        {**good, "Data": {"B": "QUJD\n"}},
        {**good, "Data": {"B": "QU JD"}},
        {**good, "Data": {"B": "QUJ"}},
        {**good, "Data": {"B": "QUJDé"}},
        {**good, "Data": {"B": "QQ==QQ=="}},
        {**good, "Data": {"B": "not base64!"}, "version": {"N": "x"}},
        {**good, "Data": {"B": base64.b64encode(b"junk").decode()}, "version": {"N": "x"}},
        {**good, "version": {"N": "²"}},
        {**good, "version": {"N": "7.0"}},
        {**good, "version": {"S": "7"}},
        {**good, "RingKey": "collectors/ring"},
        {**good, "Data": {"B": bytearray(b"\x00")}},
        {**good, "Data": {"B": 12}},
        {**good, "Data": {"B": ["x"]}},
        {**good, "Data": {"S": "x"}},
        {**good, "Data": "x"},
        {**good, "version": {"N": "x"}},
        {**good, "ttl": {"N": "17"}},
        {**good, "Data": {"B": base64.b64encode(b"\x00\x01garbage").decode()}},
        {k: v for k, v in good.items() if k != "InstanceKey"},
    ]
    decoder = ItemDecoder()
    for _ in range(2):
        decoder.start_scan()
        for item in [good, *bad]:
            _same(item, decoder)


def test_cached_decoder_matches_decode_item_on_every_real_dump() -> None:
    decoder = ItemDecoder()
    for name in DUMPS * 2:
        decoder.start_scan()
        for item in load_dump(name)["Items"]:
            _same(item, decoder)


def _read(items: list[dict[str, Any]], at: float) -> TableRead:
    return TableRead(table="t", started_at=at, items=copy.deepcopy(items))


def test_reused_blocks_and_index_give_the_same_snapshot_and_text_as_a_fresh_start() -> None:
    dumps = [
        load_dump(name)["Items"]
        for name in ("healthy", "sigstop-45s", "healthy", "with-ttl", "sigterm-3s", "sigterm-3s")
    ]
    warm_builder, warm_renderer = SnapshotBuilder(stale_after=30.0), Renderer()
    # The same heartbeat history (the periods learned), with no decoder cache or index.
    cold_builder = SnapshotBuilder(stale_after=30.0)
    previous = None
    for step, items in enumerate(dumps):
        at = 1_795_669_000.0 + 10 * step
        snapshot = warm_builder.build([_read(items, at)], previous, at)
        cold_builder.decoder = ItemDecoder()
        cold_builder._indexes.clear()
        cold = cold_builder.build([_read(items, at)], previous, at)
        assert snapshot.tables == cold.tables
        assert warm_renderer.render(snapshot.tables) == Renderer().render(snapshot.tables)
        previous = snapshot


@asynccontextmanager
async def _scanned_exporter(moto_dynamo: Any, table: str) -> AsyncIterator[tuple[bytes, str]]:
    """An exporter on the healthy dump after one scan: its exposition body and URL."""
    moto_dynamo.load_dump(table, "healthy")
    argv = [
        "--dynamodb.table",
        table,
        "--dynamodb.endpoint-url",
        moto_dynamo.endpoint_url,
        "--dynamodb.region",
        "us-east-1",
    ]
    async with running_exporter(argv) as (exporter, url):
        await exporter.scan_once()
        yield exporter.exposition().body, url


async def _plain_metrics(session: aiohttp.ClientSession, url: str) -> bytes:
    """/metrics uncompressed, as long as its Content-Length says."""
    async with session.get(f"{url}/metrics", headers={"Accept-Encoding": "identity"}) as resp:
        plain = await resp.read()
        assert int(resp.headers["Content-Length"]) == len(plain)
    return plain


def test_metrics_body_written_in_slices_is_the_exposition_and_own_metrics(
    moto_dynamo, monkeypatch
) -> None:
    monkeypatch.setattr(ringweb, "_WRITE_CHUNK", 1000)  # many slices even for a small ring

    async def run() -> None:
        async with _scanned_exporter(moto_dynamo, "fast-paths") as (body, url):
            async with aiohttp.ClientSession() as session:
                plain = await _plain_metrics(session, url)
                async with session.get(
                    f"{url}/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
                ) as resp:
                    assert resp.headers["Content-Encoding"] == "gzip"
                    unzipped = gzip.decompress(await resp.read())
                async with session.head(f"{url}/metrics") as resp:
                    assert resp.status == 200
                    assert await resp.read() == b""
        assert len(body) > 3000
        for text in (plain, unzipped):
            assert text.startswith(body)
            assert b"ringwatch_up{" in text[len(body) :]

    asyncio.run(run())


def _page_decoded(items: list[Any], decoder: ItemDecoder) -> list[Any]:
    """The items as the exporter reads them: one page's Items JSON, then each item."""
    return [
        _outcome(decoder.decode, item) for item in read_items_json(msgspec.Raw(orjson.dumps(items)))
    ]


def _reference(items: list[Any]) -> list[Any]:
    return [_outcome(decode_item, copy.deepcopy(item)) for item in items]


def test_typed_wire_items_give_what_decode_item_gives_for_real_dumps() -> None:
    decoder = ItemDecoder()
    for name in DUMPS * 2:
        items = load_dump(name)["Items"]
        decoder.start_scan()
        typed = read_items_json(msgspec.Raw(orjson.dumps(items)))
        assert [type(i) for i in typed] == [WireItem] * len(items)
        assert _page_decoded(items, decoder) == _reference(items)


@pytest.mark.parametrize("name", sorted(ODD_ENCODINGS))
def test_typed_wire_items_give_what_decode_item_gives_for_odd_encodings(name: str) -> None:
    decoder = ItemDecoder()
    for scan in range(3):
        decoder.start_scan()
        items = [_item(ODD_ENCODINGS["plain"], f"plain-{scan}"), _item(ODD_ENCODINGS[name])]
        assert _page_decoded(items, decoder) == _reference(items)


def test_a_page_with_one_odd_item_is_read_item_by_item_with_the_same_results() -> None:
    good = _item(ODD_ENCODINGS["plain"])
    odd = [
        {**good, "ttl": {"N": "17"}},  # typed, then checked as a dict
        {**good, "version": {"N": "7.0"}},
        {**good, "version": {"N": "1" * 30}},
        {**good, "Data": {"B": "not base64!"}},
        {**good, "version": {"S": "7"}},  # not a WireItem: the whole page as dicts
        {**good, "RingKey": "collectors/ring"},
        {**good, "Data": {"B": 12}},
        "not an item",
        {k: v for k, v in good.items() if k != "InstanceKey"},
    ]
    decoder = ItemDecoder()
    for bad in odd:
        for _ in range(2):
            decoder.start_scan()
            page = [good, bad, {**good, "InstanceKey": {"S": "after"}}]
            assert _page_decoded(page, decoder) == _reference(page)


@pytest.mark.parametrize("text", [b"[]", b"null", b"{}", b"0"])
def test_empty_or_null_items_json_is_no_item(text: bytes) -> None:
    assert list(read_items_json(msgspec.Raw(text))) == []


def test_metrics_body_without_kernel_sendfile_is_the_same_bytes(moto_dynamo, monkeypatch) -> None:
    async def no_sendfile(*args: Any, **kwargs: Any) -> None:
        raise asyncio.SendfileNotAvailableError("not on this platform")

    monkeypatch.setattr(ringweb, "_WRITE_CHUNK", 1000)  # many slices

    async def run() -> None:
        async with _scanned_exporter(moto_dynamo, "no-sendfile") as (body, url):
            monkeypatch.setattr(asyncio.get_running_loop(), "sendfile", no_sendfile)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                plain = await _plain_metrics(session, url)
        assert len(body) > 3000 and plain.startswith(body)
        assert b"ringwatch_up{" in plain[len(body) :]

    asyncio.run(run())
