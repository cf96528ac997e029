"""Member and ring series of a snapshot -> Prometheus text exposition (0.0.4).

Rendered once per scan, never per scrape. At 10k members this is ~170k lines,
so label sets are built once per member and kept across scans, each family is
one list comprehension of f-strings, and a family whose values did not change
since the last scan (most of them: state, info, tokens, ownership) is reused
as rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from ringwatch.cortex.proto import KNOWN_STATES
from ringwatch.gcpause import gc_paused
from ringwatch.snapshot.model import MemberView, TableView

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_label(value: str) -> str:
    """A label value escaped as the text format wants (backslash, quote, newline)."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def format_value(value: float) -> str:
    """A sample value as the text format writes it (integers without `.0`)."""
    if value != value:
        return "NaN"
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return repr(value)


# Every member and ring family: name -> (type, HELP). Written once; the renderer and the
# benchmark's plain yardstick both take their headers from here.
FAMILIES: dict[str, tuple[str, str]] = {
    "ringwatch_member_heartbeat_timestamp_seconds": (
        "gauge", "Unix time of the member's last heartbeat (InstanceDesc.timestamp)."),
    "ringwatch_member_heartbeat_age_seconds": (
        "gauge", "Scan time minus the last heartbeat; negative under clock skew."),
    "ringwatch_member_heartbeat_period_seconds": (
        "gauge", "The member's heartbeat period as ringwatch observed it; absent until known."),
    "ringwatch_member_heartbeat_stale_threshold_seconds": (
        "gauge", "Heartbeat age past which ringwatch calls the member stale (its one stale rule)."),
    "ringwatch_member_registered_timestamp_seconds": (
        "gauge", "Unix time the member registered in the ring; 0 means unknown."),
    "ringwatch_member_state": ("gauge", "1 for the member's current state in the ring."),
    "ringwatch_member_info": ("gauge", "Always 1; the member's address and zone as labels."),
    "ringwatch_member_tokens": ("gauge", "Number of tokens the member holds."),
    "ringwatch_member_token_ownership_ratio": (
        "gauge", "Share of the 2^32 token space the member owns, 0 to 1."),
    "ringwatch_member_cas_writes_total": (
        "counter", "The item's version: successful CAS writes since it was created."),
    "ringwatch_member_cas_last_change_timestamp_seconds": (
        "gauge", "When ringwatch first saw the item's current version (its own clock)."),
    "ringwatch_member_item_bytes": (
        "gauge", "Length of the item's Data attribute as stored (snappy-compressed)."),
    "ringwatch_member_ttl_timestamp_seconds": ("gauge", "The item's ttl attribute (unix seconds)."),
    "ringwatch_ring_members": ("gauge", "Members of the ring by state."),
    "ringwatch_ring_stale_members": (
        "gauge",
        "Members whose heartbeat is older than their stale threshold (see --ring.stale-after)."),
    "ringwatch_ring_oldest_heartbeat_timestamp_seconds": (
        "gauge", "The oldest heartbeat in the ring."),
    "ringwatch_ring_tokens": ("gauge", "All tokens in the ring."),
}


def header(name: str) -> str:
    """The `# HELP` and `# TYPE` lines of family `name`."""
    kind, help_text = FAMILIES[name]
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


_HEADER_BYTES = {name: header(name).encode() for name in FAMILIES}


_VIEW_FIELDS = ("heartbeat_age", "heartbeat_period", "stale_threshold", "ownership",
                "cas_last_change", "member")
_MEMBER_FIELDS = ("heartbeat_timestamp", "registered_timestamp", "state", "addr", "zone",
                  "tokens", "version", "item_bytes", "ttl")


def _column(rows: Sequence[Any], field: str) -> list[Any]:
    """One attribute of every row (a C loop, and a list: a pass per column costs less
    than one pass making a tuple per row, then transposing)."""
    return list(map(attrgetter(field), rows))


class Renderer:
    """Renders member and ring series once per scan; a family unchanged since is reused."""
    def __init__(self, member_states: str = "all") -> None:
        self.member_states = member_states
        # (table, ring) -> member -> its label text; one dict a ring, so a lookup
        # hashes only the member id (a str caches its hash).
        self._labels: dict[tuple[str, str], dict[str, str]] = {}
        # family -> (labels, values, rendered lines) of the last render
        self._blocks: dict[str, tuple[list[str], Any, bytes]] = {}
        self._blocks_next: dict[str, tuple[list[str], Any, bytes]] = {}

    def _member_labels(self, table: str, ring: str, views: Sequence[MemberView],
                       labels: dict[tuple[str, str], dict[str, str]]) -> list[str]:
        """Each view's label text; the ring's cache, pruned to these members, into `labels`."""
        old = self._labels.get((table, ring), {})
        cache = labels[(table, ring)] = {}
        prefix = f'table="{escape_label(table)}",ring="{escape_label(ring)}",member="'
        out = []
        add = out.append
        get = old.get
        for view in views:
            name = view.member.name
            text = get(name)
            if text is None:
                text = f'{prefix}{escape_label(name)}"'
            cache[name] = text
            add(text)
        return out

    def _block(self, family: str, labels: list[str], values: Any,
               make: Callable[[], list[str]]) -> bytes:
        """A family's lines, made again only if its labels or values changed.

        Most families (state, info, tokens, ownership, ...) do not move between
        scans; comparing the lists is cheap, their label strings being the same
        objects from scan to scan."""
        cached = self._blocks.get(family)
        if cached is not None and cached[0] == labels and cached[1] == values:
            self._blocks_next[family] = cached
            return cached[2]
        block = "".join(make()).encode()
        self._blocks_next[family] = (labels, values, block)
        return block

    def render(self, tables: Sequence[TableView]) -> bytes:
        """The exposition of these tables' member and ring series."""
        return b"".join(self.render_parts(tables))

    def render_parts(self, tables: Sequence[TableView]) -> list[bytes]:
        """`render`'s bytes in parts, the family blocks kept for the next scan among
        them: holding the parts costs no second copy of the exposition."""
        with gc_paused():
            return self._render(tables)

    def _render(self, tables: Sequence[TableView]) -> list[bytes]:
        labels: list[str] = []
        views: list[MemberView] = []
        ring_rows = []
        label_cache: dict[tuple[str, str], dict[str, str]] = {}
        for table in tables:
            for ring in table.rings:
                labels += self._member_labels(table.table, ring.ring, ring.members, label_cache)
                views += ring.members
                ring_rows.append((f'table="{escape_label(table.table)}",'
                                  f'ring="{escape_label(ring.ring)}"', ring))
        self._labels = label_cache
        self._blocks_next = {}
        out: list[bytes] = []
        add = out.append
        block = self._block
        if views:
            ages, periods, thresholds, ownership, changes, members = (
                _column(views, name) for name in _VIEW_FIELDS)
            (heartbeats, registered, states, addrs, zones, tokens, versions, item_bytes,
             ttls) = (_column(members, name) for name in _MEMBER_FIELDS)
            add(_HEADER_BYTES["ringwatch_member_heartbeat_timestamp_seconds"])
            add(block("heartbeat", labels, heartbeats, lambda: [
                f"ringwatch_member_heartbeat_timestamp_seconds{{{lb}}} {t}\n"
                for lb, t in zip(labels, heartbeats, strict=True)]))
            add(_HEADER_BYTES["ringwatch_member_heartbeat_age_seconds"])
            # A table's ages are one scan time minus whole-second heartbeats: few
            # distinct values, each formatted once.
            age_text = {age: f"{age:.3f}" for age in set(ages)}
            add("".join([f"ringwatch_member_heartbeat_age_seconds{{{lb}}} {age_text[age]}\n"
                         for lb, age in zip(labels, ages, strict=True)]).encode())
            period_block = block("period", labels, periods, lambda: [
                f"ringwatch_member_heartbeat_period_seconds{{{lb}}} {p}\n"
                for lb, p in zip(labels, periods, strict=True) if p is not None])
            if period_block:
                add(_HEADER_BYTES["ringwatch_member_heartbeat_period_seconds"])
                add(period_block)
            add(_HEADER_BYTES["ringwatch_member_heartbeat_stale_threshold_seconds"])
            add(block("threshold", labels, thresholds, lambda: [
                f"ringwatch_member_heartbeat_stale_threshold_seconds{{{lb}}} {format_value(t)}\n"
                for lb, t in zip(labels, thresholds, strict=True)]))
            add(_HEADER_BYTES["ringwatch_member_registered_timestamp_seconds"])
            add(block("registered", labels, registered, lambda: [
                f"ringwatch_member_registered_timestamp_seconds{{{lb}}} {r}\n"
                for lb, r in zip(labels, registered, strict=True)]))
            add(_HEADER_BYTES["ringwatch_member_state"])
            if self.member_states == "all":
                for state in KNOWN_STATES:
                    add(block(f"state {state}", labels, states, lambda state=state: [
                        f'ringwatch_member_state{{{lb},state="{state}"}} '
                        f'{1 if s == state else 0}\n'
                        for lb, s in zip(labels, states, strict=True)]))
                add(block("state UNKNOWN", labels, states, lambda: [
                    f'ringwatch_member_state{{{lb},state="UNKNOWN"}} 1\n'
                    for lb, s in zip(labels, states, strict=True) if s == "UNKNOWN"]))
            else:
                add(block("state current", labels, states, lambda: [
                    f'ringwatch_member_state{{{lb},state="{s}"}} 1\n'
                    for lb, s in zip(labels, states, strict=True)]))
            add(_HEADER_BYTES["ringwatch_member_info"])
            add(block("info", labels, (addrs, zones), lambda: [
                f'ringwatch_member_info{{{lb},addr="{escape_label(a)}",'
                f'member_zone="{escape_label(z)}"}} 1\n'
                for lb, a, z in zip(labels, addrs, zones, strict=True)]))
            add(_HEADER_BYTES["ringwatch_member_tokens"])
            add(block("tokens", labels, tokens, lambda: [
                f"ringwatch_member_tokens{{{lb}}} {len(t)}\n"
                for lb, t in zip(labels, tokens, strict=True)]))
            add(_HEADER_BYTES["ringwatch_member_token_ownership_ratio"])
            add(block("ownership", labels, ownership, lambda: [
                f"ringwatch_member_token_ownership_ratio{{{lb}}} {o!r}\n"
                for lb, o in zip(labels, ownership, strict=True)]))
            add(_HEADER_BYTES["ringwatch_member_cas_writes_total"])
            add(block("cas", labels, versions, lambda: [
                f"ringwatch_member_cas_writes_total{{{lb}}} {v}\n"
                for lb, v in zip(labels, versions, strict=True)]))
            add(_HEADER_BYTES["ringwatch_member_cas_last_change_timestamp_seconds"])
            # Few distinct values (mostly the scan times): format each once.
            text = {value: format_value(value) for value in set(changes)}
            add(block("cas change", labels, changes, lambda: [
                f"ringwatch_member_cas_last_change_timestamp_seconds{{{lb}}} {text[c]}\n"
                for lb, c in zip(labels, changes, strict=True)]))
            add(_HEADER_BYTES["ringwatch_member_item_bytes"])
            add(block("item bytes", labels, item_bytes, lambda: [
                f"ringwatch_member_item_bytes{{{lb}}} {b}\n"
                for lb, b in zip(labels, item_bytes, strict=True)]))
            ttl_rows = [(lb, t) for lb, t in zip(labels, ttls, strict=True) if t is not None]
            if ttl_rows:
                add(_HEADER_BYTES["ringwatch_member_ttl_timestamp_seconds"])
                add("".join([f"ringwatch_member_ttl_timestamp_seconds{{{lb}}} {t}\n"
                             for lb, t in ttl_rows]).encode())
        self._blocks = self._blocks_next
        ring_out: list[str] = []
        if ring_rows:
            radd = ring_out.append
            radd(header("ringwatch_ring_members"))
            for lb, ring in ring_rows:
                ring_out += [f'ringwatch_ring_members{{{lb},state="{state}"}} {count}\n'
                             for state, count in ring.state_counts.items()]
            radd(header("ringwatch_ring_stale_members"))
            ring_out += [f"ringwatch_ring_stale_members{{{lb}}} {r.stale_members}\n"
                         for lb, r in ring_rows]
            radd(header("ringwatch_ring_oldest_heartbeat_timestamp_seconds"))
            ring_out += [f"ringwatch_ring_oldest_heartbeat_timestamp_seconds{{{lb}}} "
                         f"{r.oldest_heartbeat}\n" for lb, r in ring_rows
                         if r.oldest_heartbeat is not None]
            radd(header("ringwatch_ring_tokens"))
            ring_out += [f"ringwatch_ring_tokens{{{lb}}} {r.tokens}\n" for lb, r in ring_rows]
        add("".join(ring_out).encode())
        return out
