"""The /ring page: every member of every ring, oldest heartbeat first (no JavaScript)."""

from __future__ import annotations

import html

from .snapshot import Snapshot


def render_page(snapshot: Snapshot | None, fresh_tables: frozenset[str], now: float) -> str:
    if snapshot is None:
        return "<!DOCTYPE html><title>ringwatch ring</title><p>No scan has finished yet.</p>"
    rows = []
    for table in snapshot.tables:
        for ring in table.rings if table.table in fresh_tables else ():
            for v in sorted(ring.members, key=lambda v: -v.heartbeat_age):
                rows.append(
                    f"<tr><td>{html.escape(table.table)}</td><td>{html.escape(ring.ring)}</td>"
                    f"<td>{html.escape(v.member.member)}</td><td>{v.member.state}</td>"
                    f"<td>{v.heartbeat_age:.1f}</td><td>{v.ownership * 100:.2f}%</td></tr>")
    return ("<!DOCTYPE html><title>ringwatch ring</title><table>"
            + "".join(rows) + "</table>")
