"""The JSON shape shared by `ringwatch scan --output json` and `/ring.json`."""

from __future__ import annotations

from typing import Any

from ringwatch.render.text import by_heartbeat_age
from ringwatch.snapshot.model import MemberView, Snapshot, TableView

# orjson writes integers in [-2^63, 2^64) only; DynamoDB numbers (version, ttl)
# go up to 1e126. Those outside are written as decimal strings, exact.
_JSON_INT_MIN, _JSON_INT_MAX = -(1 << 63), (1 << 64) - 1


def json_int(value: int | None) -> int | str | None:
    """`value` as a JSON number if orjson can write it, else as its decimal string."""
    if value is None or _JSON_INT_MIN <= value <= _JSON_INT_MAX:
        return value
    return str(value)


def member_json(view: MemberView) -> dict[str, Any]:
    """One member: the contract's fields, then the extras (period, threshold, CAS change, ttl)."""
    return members_json([view])[0]


def members_json(views: list[MemberView]) -> list[dict[str, Any]]:
    """`member_json` of each view, in one comprehension (a 20k-member ring's JSON)."""
    # round(x, 3) costs ~0.4 us (it goes through decimal text); a ring's ages are one
    # scan time minus whole-second heartbeats, so few distinct values: round each once.
    ages = {age: round(age, 3) for age in {v.heartbeat_age for v in views}}
    return [
        {
            "member": (m := v.member).name,
            "state": m.state,
            "state_number": m.state_num,
            "zone": m.zone,
            "addr": m.addr,
            "heartbeat_timestamp": m.heartbeat_timestamp,
            "heartbeat_age_seconds": ages[v.heartbeat_age],
            "registered_timestamp": m.registered_timestamp,
            "tokens": len(m.tokens),
            "ownership": v.ownership,
            "cas_version": json_int(m.version),
            "cas_last_change_timestamp": v.cas_last_change,
            "stale": v.stale,
            "heartbeat_period_seconds": v.heartbeat_period,
            "stale_threshold_seconds": v.stale_threshold,
            "ttl": json_int(m.ttl),
            "item_bytes": m.item_bytes,
        }
        for v in views
    ]


def table_json(view: TableView, served: bool = True) -> dict[str, Any]:
    """One table of the shared JSON shape (rings and members only while served)."""
    return {
        "table": view.table,
        "ok": view.ok,
        "error": view.error,
        "result": view.result,
        "last_successful_scan_timestamp": view.scanned_at,
        "decode_errors": [
            {"ring": e.ring, "member": e.member, "reason": e.reason, "detail": e.detail}
            for e in view.decode_errors
        ],
        "rings": [
            {
                "ring": ring.ring,
                "members": members_json(by_heartbeat_age(ring.members)),
            }
            for ring in view.rings
        ] if served else [],
    }


def snapshot_json(snapshot: Snapshot, served_tables: frozenset[str] | None = None
                  ) -> dict[str, Any]:
    """The whole document; members of tables not in `served_tables` are left out."""
    return {
        "scanned_at": snapshot.created_at,
        "stale_after_seconds": snapshot.stale_after,
        "stale_periods": snapshot.stale_periods,
        "stale_floor_seconds": snapshot.stale_floor,
        "tables": [
            table_json(t, served_tables is None or t.table in served_tables)
            for t in snapshot.tables
        ],
    }
