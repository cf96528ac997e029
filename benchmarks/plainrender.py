"""The yardstick for rendering: the same text as `ringwatch.render.exposition.Renderer`,
written the plain way (one f-string per line, no caches). The benchmark checks
that both produce identical bytes, then compares their cost."""

from __future__ import annotations

from collections.abc import Sequence

from ringwatch.cortex.proto import KNOWN_STATES
from ringwatch.render.exposition import escape_label, format_value, header
from ringwatch.snapshot.model import TableView


def plain_render(tables: Sequence[TableView], member_states: str = "all") -> bytes:
    rows = [
        (escape_label(t.table), escape_label(r.ring), escape_label(v.member.name), v)
        for t in tables
        for r in t.rings
        for v in r.members
    ]
    rings = [(escape_label(t.table), escape_label(r.ring), r) for t in tables for r in t.rings]
    out: list[str] = []
    w = out.append
    if rows:
        w(header("ringwatch_member_heartbeat_timestamp_seconds"))
        for t, r, m, v in rows:
            w(
                f'ringwatch_member_heartbeat_timestamp_seconds{{table="{t}",ring="{r}",'
                f'member="{m}"}} {v.member.heartbeat_timestamp}\n'
            )
        w(header("ringwatch_member_heartbeat_age_seconds"))
        for t, r, m, v in rows:
            w(
                f'ringwatch_member_heartbeat_age_seconds{{table="{t}",ring="{r}",member="{m}"}} '
                f"{v.heartbeat_age:.3f}\n"
            )
        if any(v.heartbeat_period is not None for *_, v in rows):
            w(header("ringwatch_member_heartbeat_period_seconds"))
            for t, r, m, v in rows:
                if v.heartbeat_period is not None:
                    w(
                        f'ringwatch_member_heartbeat_period_seconds{{table="{t}",ring="{r}",'
                        f'member="{m}"}} {v.heartbeat_period}\n'
                    )
        w(header("ringwatch_member_heartbeat_stale_threshold_seconds"))
        for t, r, m, v in rows:
            w(
                f'ringwatch_member_heartbeat_stale_threshold_seconds{{table="{t}",ring="{r}",'
                f'member="{m}"}} {format_value(v.stale_threshold)}\n'
            )
        w(header("ringwatch_member_registered_timestamp_seconds"))
        for t, r, m, v in rows:
            w(
                f'ringwatch_member_registered_timestamp_seconds{{table="{t}",ring="{r}",'
                f'member="{m}"}} {v.member.registered_timestamp}\n'
            )
        w(header("ringwatch_member_state"))
        if member_states == "all":
            for state in KNOWN_STATES:
                for t, r, m, v in rows:
                    w(
                        f'ringwatch_member_state{{table="{t}",ring="{r}",member="{m}",'
                        f'state="{state}"}} {1 if v.member.state == state else 0}\n'
                    )
            for t, r, m, v in rows:
                if v.member.state == "UNKNOWN":
                    w(
                        f'ringwatch_member_state{{table="{t}",ring="{r}",member="{m}",'
                        f'state="UNKNOWN"}} 1\n'
                    )
        else:
            for t, r, m, v in rows:
                w(
                    f'ringwatch_member_state{{table="{t}",ring="{r}",member="{m}",'
                    f'state="{v.member.state}"}} 1\n'
                )
        w(header("ringwatch_member_info"))
        for t, r, m, v in rows:
            w(
                f'ringwatch_member_info{{table="{t}",ring="{r}",member="{m}",'
                f'addr="{escape_label(v.member.addr)}",'
                f'member_zone="{escape_label(v.member.zone)}"}} 1\n'
            )
        w(header("ringwatch_member_tokens"))
        for t, r, m, v in rows:
            w(
                f'ringwatch_member_tokens{{table="{t}",ring="{r}",member="{m}"}} '
                f"{len(v.member.tokens)}\n"
            )
        w(header("ringwatch_member_token_ownership_ratio"))
        for t, r, m, v in rows:
            w(
                f'ringwatch_member_token_ownership_ratio{{table="{t}",ring="{r}",member="{m}"}} '
                f"{v.ownership!r}\n"
            )
        w(header("ringwatch_member_cas_writes_total"))
        for t, r, m, v in rows:
            w(
                f'ringwatch_member_cas_writes_total{{table="{t}",ring="{r}",member="{m}"}} '
                f"{v.member.version}\n"
            )
        w(header("ringwatch_member_cas_last_change_timestamp_seconds"))
        for t, r, m, v in rows:
            w(
                f'ringwatch_member_cas_last_change_timestamp_seconds{{table="{t}",ring="{r}",'
                f'member="{m}"}} {format_value(v.cas_last_change)}\n'
            )
        w(header("ringwatch_member_item_bytes"))
        for t, r, m, v in rows:
            w(
                f'ringwatch_member_item_bytes{{table="{t}",ring="{r}",member="{m}"}} '
                f"{v.member.item_bytes}\n"
            )
        ttl = [(t, r, m, v) for t, r, m, v in rows if v.member.ttl is not None]
        if ttl:
            w(header("ringwatch_member_ttl_timestamp_seconds"))
            for t, r, m, v in ttl:
                w(
                    f'ringwatch_member_ttl_timestamp_seconds{{table="{t}",ring="{r}",'
                    f'member="{m}"}} {v.member.ttl}\n'
                )
    if rings:
        w(header("ringwatch_ring_members"))
        for t, r, ring in rings:
            for state, count in ring.state_counts.items():
                w(f'ringwatch_ring_members{{table="{t}",ring="{r}",state="{state}"}} {count}\n')
        w(header("ringwatch_ring_stale_members"))
        for t, r, ring in rings:
            w(f'ringwatch_ring_stale_members{{table="{t}",ring="{r}"}} {ring.stale_members}\n')
        w(header("ringwatch_ring_oldest_heartbeat_timestamp_seconds"))
        for t, r, ring in rings:
            if ring.oldest_heartbeat is not None:
                w(
                    f'ringwatch_ring_oldest_heartbeat_timestamp_seconds{{table="{t}",ring="{r}"}} '
                    f"{ring.oldest_heartbeat}\n"
                )
        w(header("ringwatch_ring_tokens"))
        for t, r, ring in rings:
            w(f'ringwatch_ring_tokens{{table="{t}",ring="{r}"}} {ring.tokens}\n')
    return "".join(out).encode()
