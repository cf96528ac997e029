"""What a scan leaves for Python's cyclic garbage collector: nothing per member.

The collector is paused while a scan builds its objects and resumes after it; its
first collection then walks every tracked object the scan made and kept. A
tracked object a member left behind (a tuple of decoded fields, a tuple of
heartbeat samples) made that walk grow with the ring: 18 ms at 50k members."""

from __future__ import annotations

import base64
import gc
from typing import Any

import msgspec
import pytest
from support.heartbeats import TABLE, BeatingMember, every, table_read

from ringwatch.snapshot.builder import SnapshotBuilder
from ringwatch.snapshot.model import Snapshot

MEMBERS = 500
T0 = 1_700_000_000.3


def _as_page(items: list[dict[str, Any]]) -> msgspec.Raw:
    """The items as a Scan page's `Items` JSON (Data as base64 text), as the client hands it."""
    for item in items:
        item["Data"]["B"] = base64.b64encode(item["Data"]["B"]).decode()
    return msgspec.Raw(msgspec.json.encode(items))


def _scan(
    builder: SnapshotBuilder,
    items: list[dict[str, Any]],
    at: float,
    previous: Snapshot | None,
    page: bool,
) -> Snapshot:
    builder.start_scan()
    read = builder.decode_page(_as_page(items)) if page else items
    return builder.build([table_read(read, at)], previous, at)


@pytest.mark.parametrize("page", [True, False], ids=["wire-json-page", "item-dicts"])
def test_a_scan_of_beating_members_leaves_no_per_member_object_for_the_cyclic_gc(
    page: bool,
) -> None:
    members = [BeatingMember(f"ingester-{i}", 5, T0 + i / MEMBERS) for i in range(MEMBERS)]
    builder = SnapshotBuilder(stale_after=60.0)
    previous = None
    times = every(5, T0 + 1.5, T0 + 60)
    for at in times[:-1]:  # periods learned, caches warm
        previous = _scan(builder, [m.item(at) for m in members], at, previous, page)
    items = [m.item(times[-1]) for m in members]
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        snapshot = _scan(builder, items, times[-1], previous, page)
        young = gc.get_objects(generation=0)
    finally:
        if was_enabled:
            gc.enable()
    kinds: dict[str, int] = {}
    for obj in young:
        kinds[type(obj).__name__] = kinds.get(type(obj).__name__, 0) + 1
    print(f"{MEMBERS} members beating: {len(young)} tracked objects made and kept: {kinds}")
    assert {v.heartbeat_period for v in snapshot.table(TABLE).members} == {5}
    assert len(young) < MEMBERS / 10
