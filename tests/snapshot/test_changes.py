"""What changed in a table since its previous view (`TableView.changes` and `.gone`),
which the exporter logs: noted by the builder as it judges each member."""

from __future__ import annotations

from support.heartbeats import TABLE, member_item, table_read

from ringwatch.snapshot.builder import SnapshotBuilder
from ringwatch.snapshot.model import Snapshot, TableView

T0 = 1_700_000_000
REGISTERED = T0 - 3600


def _scan(
    builder: SnapshotBuilder,
    previous: Snapshot | None,
    at: float,
    members: dict[tuple[str, str], tuple[int, str]],
    ok: bool = True,
) -> Snapshot:
    items = [
        member_item(name, beat, REGISTERED, ring=ring, state=state)
        for (ring, name), (beat, state) in members.items()
    ]
    return builder.build([table_read(items, at, ok=ok)], previous, at)


def _changes(view: TableView | None) -> list[tuple[str, str, str | None, str, bool]]:
    assert view is not None
    return [
        (ring, v.member.name, was.member.state if was else None, v.member.state, v.stale)
        for ring, was, v in view.changes
    ]


def test_changes_name_each_member_that_appeared_moved_went_stale_or_went_away() -> None:
    builder = SnapshotBuilder(stale_after=60.0)
    ring = {("ring-a", f"m{i}"): (T0, "ACTIVE") for i in range(4)}
    other = {("ring-b", "b0"): (T0, "ACTIVE")}
    first = _scan(builder, None, T0 + 1, ring | other)
    assert first.table(TABLE).changes == () and first.table(TABLE).gone == ()

    same = _scan(builder, first, T0 + 6, {k: (T0 + 5, s) for k, (_, s) in (ring | other).items()})
    assert same.table(TABLE).changes == () and same.table(TABLE).gone == ()

    moved = dict(ring)
    moved[("ring-a", "m0")] = (T0 + 10, "LEAVING")  # state changed
    moved[("ring-a", "m1")] = (T0 - 100, "ACTIVE")  # heartbeat 111 s old: stale
    del moved[("ring-a", "m2")]  # gone
    moved[("ring-a", "m9")] = (T0 + 10, "JOINING")  # appeared
    # ring-b is gone as a whole
    after = _scan(builder, same, T0 + 11, moved)
    assert _changes(after.table(TABLE)) == [
        ("ring-a", "m0", "ACTIVE", "LEAVING", False),
        ("ring-a", "m1", "ACTIVE", "ACTIVE", True),
        ("ring-a", "m9", None, "JOINING", False),
    ]
    assert after.table(TABLE).gone == (("ring-a", "m2"), ("ring-b", "b0"))


def test_a_failed_scan_changes_nothing_and_the_next_compares_with_the_last_good() -> None:
    builder = SnapshotBuilder(stale_after=60.0)
    members = {("ring-a", "m0"): (T0, "ACTIVE"), ("ring-a", "m1"): (T0, "ACTIVE")}
    good = _scan(builder, None, T0 + 1, members)
    failed = _scan(builder, good, T0 + 6, members, ok=False)
    assert failed.table(TABLE).changes == () and failed.table(TABLE).gone == ()
    back = _scan(builder, failed, T0 + 11, {("ring-a", "m0"): (T0 + 10, "LEAVING")})
    assert _changes(back.table(TABLE)) == [("ring-a", "m0", "ACTIVE", "LEAVING", False)]
    assert back.table(TABLE).gone == (("ring-a", "m1"),)
