"""Member and ring series of a snapshot -> Prometheus text exposition (0.0.4).

Rendered once per scan, never per scrape. At 10k members this is ~170k lines,
so label sets are built once per member and kept across scans, and each
family is one list comprehension of f-strings.
"""

from __future__ import annotations

from collections.abc import Sequence

from .ringproto import KNOWN_STATES
from .snapshot import MemberView, TableView

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_label(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def format_value(value: float) -> str:
    if value != value:
        return "NaN"
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return repr(value)


def _header(name: str, kind: str, help_text: str) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


class Renderer:
    def __init__(self, member_states: str = "all") -> None:
        self.member_states = member_states
        self._labels: dict[tuple[str, str, str], str] = {}

    def _member_labels(self, table: str, views: Sequence[MemberView]) -> list[str]:
        cache = self._labels
        out = []
        for view in views:
            m = view.member
            key = (table, m.ring, m.member)
            labels = cache.get(key)
            if labels is None:
                labels = (f'table="{escape_label(table)}",ring="{escape_label(m.ring)}",'
                          f'member="{escape_label(m.member)}"')
                cache[key] = labels
            out.append(labels)
        return out

    def render(self, tables: Sequence[TableView]) -> bytes:
        rows: list[tuple[str, MemberView]] = []
        ring_rows = []
        live: set[tuple[str, str, str]] = set()
        for table in tables:
            for ring in table.rings:
                labels = self._member_labels(table.table, ring.members)
                rows.extend(zip(labels, ring.members, strict=True))
                ring_rows.append((f'table="{escape_label(table.table)}",'
                                  f'ring="{escape_label(ring.ring)}"', ring))
                live.update((table.table, ring.ring, v.member.member) for v in ring.members)
        if len(self._labels) > len(live):
            self._labels = {k: v for k, v in self._labels.items() if k in live}

        out: list[str] = []
        add = out.append
        if rows:
            add(_header("ringwatch_member_heartbeat_timestamp_seconds", "gauge",
                        "Unix time of the member's last heartbeat (InstanceDesc.timestamp)."))
            out += [f"ringwatch_member_heartbeat_timestamp_seconds{{{lb}}} "
                    f"{v.member.heartbeat_timestamp}\n" for lb, v in rows]
            add(_header("ringwatch_member_heartbeat_age_seconds", "gauge",
                        "Scan time minus the last heartbeat; negative under clock skew."))
            out += [f"ringwatch_member_heartbeat_age_seconds{{{lb}}} {v.heartbeat_age:.3f}\n"
                    for lb, v in rows]
            add(_header("ringwatch_member_registered_timestamp_seconds", "gauge",
                        "Unix time the member registered in the ring; 0 means unknown."))
            out += [f"ringwatch_member_registered_timestamp_seconds{{{lb}}} "
                    f"{v.member.registered_timestamp}\n" for lb, v in rows]
            add(_header("ringwatch_member_state", "gauge",
                        "1 for the member's current state in the ring."))
            if self.member_states == "all":
                for state in KNOWN_STATES:
                    out += [f'ringwatch_member_state{{{lb},state="{state}"}} '
                            f'{1 if v.member.state == state else 0}\n' for lb, v in rows]
                out += [f'ringwatch_member_state{{{lb},state="UNKNOWN"}} 1\n'
                        for lb, v in rows if v.member.state == "UNKNOWN"]
            else:
                out += [f'ringwatch_member_state{{{lb},state="{v.member.state}"}} 1\n'
                        for lb, v in rows]
            add(_header("ringwatch_member_info", "gauge",
                        "Always 1; the member's address and zone as labels."))
            out += [f'ringwatch_member_info{{{lb},addr="{escape_label(v.member.addr)}",'
                    f'member_zone="{escape_label(v.member.zone)}"}} 1\n' for lb, v in rows]
            add(_header("ringwatch_member_tokens", "gauge", "Number of tokens the member holds."))
            out += [f"ringwatch_member_tokens{{{lb}}} {len(v.member.tokens)}\n"
                    for lb, v in rows]
            add(_header("ringwatch_member_token_ownership_ratio", "gauge",
                        "Share of the 2^32 token space the member owns, 0 to 1."))
            out += [f"ringwatch_member_token_ownership_ratio{{{lb}}} {v.ownership!r}\n"
                    for lb, v in rows]
            add(_header("ringwatch_member_cas_writes_total", "counter",
                        "The item's version: successful CAS writes since it was created."))
            out += [f"ringwatch_member_cas_writes_total{{{lb}}} {v.member.version}\n"
                    for lb, v in rows]
            add(_header("ringwatch_member_cas_last_change_timestamp_seconds", "gauge",
                        "When ringwatch first saw the item's current version (its own clock)."))
            out += [f"ringwatch_member_cas_last_change_timestamp_seconds{{{lb}}} "
                    f"{format_value(v.cas_last_change)}\n" for lb, v in rows]
            add(_header("ringwatch_member_item_bytes", "gauge",
                        "Length of the item's Data attribute as stored (snappy-compressed)."))
            out += [f"ringwatch_member_item_bytes{{{lb}}} {v.member.item_bytes}\n"
                    for lb, v in rows]
            ttl_rows = [(lb, v) for lb, v in rows if v.member.ttl is not None]
            if ttl_rows:
                add(_header("ringwatch_member_ttl_timestamp_seconds", "gauge",
                            "The item's ttl attribute (unix seconds)."))
                out += [f"ringwatch_member_ttl_timestamp_seconds{{{lb}}} {v.member.ttl}\n"
                        for lb, v in ttl_rows]
        if ring_rows:
            add(_header("ringwatch_ring_members", "gauge", "Members of the ring by state."))
            for lb, ring in ring_rows:
                out += [f'ringwatch_ring_members{{{lb},state="{state}"}} {count}\n'
                        for state, count in ring.state_counts.items()]
            add(_header("ringwatch_ring_stale_members", "gauge",
                        "Members whose heartbeat is older than --ring.stale-after."))
            out += [f"ringwatch_ring_stale_members{{{lb}}} {r.stale_members}\n"
                    for lb, r in ring_rows]
            add(_header("ringwatch_ring_oldest_heartbeat_timestamp_seconds", "gauge",
                        "The oldest heartbeat in the ring."))
            out += [f"ringwatch_ring_oldest_heartbeat_timestamp_seconds{{{lb}}} "
                    f"{r.oldest_heartbeat}\n" for lb, r in ring_rows
                    if r.oldest_heartbeat is not None]
            add(_header("ringwatch_ring_tokens", "gauge", "All tokens in the ring."))
            out += [f"ringwatch_ring_tokens{{{lb}}} {r.tokens}\n" for lb, r in ring_rows]
        return "".join(out).encode()
