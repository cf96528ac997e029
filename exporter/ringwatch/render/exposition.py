"""Member and ring series of a snapshot -> Prometheus text exposition (0.0.4).

Rendered once per scan, never per scrape. Every member family is a row of one
table (`member_families`): its name, the member column each block writes and how a
value is written. At 10k members this is ~170k lines, so label sets are built once
per member and kept across scans, and a block whose values did not change since the
last scan (most of them: state, info, tokens, ownership) is reused as rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from ringwatch.cortex.decode import Member
from ringwatch.cortex.proto import KNOWN_STATES
from ringwatch.snapshot.model import MemberView, RingView, TableView

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
        "gauge",
        "Unix time of the member's last heartbeat (InstanceDesc.timestamp).",
    ),
    "ringwatch_member_heartbeat_age_seconds": (
        "gauge",
        "Scan time minus the last heartbeat; negative under clock skew.",
    ),
    "ringwatch_member_heartbeat_period_seconds": (
        "gauge",
        "The member's heartbeat period as ringwatch observed it; absent until known.",
    ),
    "ringwatch_member_heartbeat_stale_threshold_seconds": (
        "gauge",
        "Heartbeat age past which ringwatch calls the member stale (its one stale rule).",
    ),
    "ringwatch_member_registered_timestamp_seconds": (
        "gauge",
        "Unix time the member registered in the ring; 0 means unknown.",
    ),
    "ringwatch_member_state": ("gauge", "1 for the member's current state in the ring."),
    "ringwatch_member_info": ("gauge", "Always 1; the member's address and zone as labels."),
    "ringwatch_member_tokens": ("gauge", "Number of tokens the member holds."),
    "ringwatch_member_token_ownership_ratio": (
        "gauge",
        "Share of the 2^32 token space the member owns, 0 to 1.",
    ),
    "ringwatch_member_cas_writes_total": (
        "counter",
        "The item's version: successful CAS writes since it was created.",
    ),
    "ringwatch_member_cas_last_change_timestamp_seconds": (
        "gauge",
        "When ringwatch first saw the item's current version (its own clock).",
    ),
    "ringwatch_member_item_bytes": (
        "gauge",
        "Length of the item's Data attribute as stored (snappy-compressed).",
    ),
    "ringwatch_member_ttl_timestamp_seconds": ("gauge", "The item's ttl attribute (unix seconds)."),
    "ringwatch_ring_members": ("gauge", "Members of the ring by state."),
    "ringwatch_ring_stale_members": (
        "gauge",
        "Members whose heartbeat is older than their stale threshold (see --ring.stale-after).",
    ),
    "ringwatch_ring_oldest_heartbeat_timestamp_seconds": (
        "gauge",
        "The oldest heartbeat in the ring.",
    ),
    "ringwatch_ring_tokens": ("gauge", "All tokens in the ring."),
}


def header(name: str) -> str:
    """The `# HELP` and `# TYPE` lines of family `name`."""
    kind, help_text = FAMILIES[name]
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


_HEADER_BYTES = {name: header(name).encode() for name in FAMILIES}


@dataclass(frozen=True, slots=True)
class _Block:
    """One block of a member family's lines: the member column it writes (an attribute
    path of `MemberView`), the labels it adds after the member's, and how a value is
    written (`text`; None: as it is). An `optional` column leaves out members without
    a value. A block whose labels come from the column (`labels_of`) writes 1. A column
    of `few` distinct values (one scan time minus whole-second heartbeats, the scan
    times) has each written once (render at 10k members, benchmarks/member_costs.py:
    2.05 -> 1.72 us a member)."""

    key: str  # the block's name in the cache of unchanged blocks
    column: str
    text: Callable[[Any], object] | None = None
    labels: str = ""
    optional: bool = False
    labels_of: Callable[[Any], str] | None = None
    few: bool = False


def _info_labels(addr_zone: tuple[str, str]) -> str:
    """The info series' address and zone labels."""
    return f',addr="{escape_label(addr_zone[0])}",member_zone="{escape_label(addr_zone[1])}"'


def _is_state(state: str) -> Callable[[str], int]:
    """1 for a member in `state`, else 0."""
    return lambda s: 1 if s == state else 0


def _state_blocks(member_states: str) -> list[_Block]:
    """`ringwatch_member_state`: a 0/1 series per known state, or the current state only."""
    if member_states != "all":
        return [_Block("state current", "member.state", labels_of=lambda s: f',state="{s}"')]
    blocks = [
        _Block(f"state {state}", "member.state", _is_state(state), f',state="{state}"')
        for state in KNOWN_STATES
    ]
    blocks.append(
        _Block(
            "state UNKNOWN",
            "member.state",
            lambda s: 1 if s == "UNKNOWN" else None,
            ',state="UNKNOWN"',
            optional=True,
        )
    )
    return blocks


def member_families(member_states: str = "all") -> list[tuple[str, list[_Block]]]:
    """Every member family in the order written: its name and its blocks."""
    return [
        (
            "ringwatch_member_heartbeat_timestamp_seconds",
            [_Block("heartbeat", "member.heartbeat_timestamp")],
        ),
        (
            "ringwatch_member_heartbeat_age_seconds",
            [_Block("age", "heartbeat_age", "{:.3f}".format, few=True)],
        ),
        (
            "ringwatch_member_heartbeat_period_seconds",
            [_Block("period", "heartbeat_period", optional=True)],
        ),
        (
            "ringwatch_member_heartbeat_stale_threshold_seconds",
            [_Block("threshold", "stale_threshold", format_value)],
        ),
        (
            "ringwatch_member_registered_timestamp_seconds",
            [_Block("registered", "member.registered_timestamp")],
        ),
        ("ringwatch_member_state", _state_blocks(member_states)),
        ("ringwatch_member_info", [_Block("info", "member.addr_zone", labels_of=_info_labels)]),
        ("ringwatch_member_tokens", [_Block("tokens", "member.tokens", len)]),
        ("ringwatch_member_token_ownership_ratio", [_Block("ownership", "ownership", repr)]),
        ("ringwatch_member_cas_writes_total", [_Block("cas", "member.version")]),
        (
            "ringwatch_member_cas_last_change_timestamp_seconds",
            [_Block("cas change", "cas_last_change", format_value, few=True)],
        ),
        ("ringwatch_member_item_bytes", [_Block("item bytes", "member.item_bytes")]),
        ("ringwatch_member_ttl_timestamp_seconds", [_Block("ttl", "member.ttl", optional=True)]),
    ]


def _column(views: Sequence[MemberView], members: Sequence[Member], path: str) -> list[Any]:
    """One attribute of every view, or of its member (`member.x`; `member.addr_zone`: the
    address and zone together). The members are read from the views once: a dotted
    attribute path per column cost 0.2 us a member more (render at 10k members,
    benchmarks/member_costs.py: 1.75 -> 1.55 us a member)."""
    if path == "member.addr_zone":
        return list(map(attrgetter("addr", "zone"), members))
    if path.startswith("member."):
        return list(map(attrgetter(path.removeprefix("member.")), members))
    return list(map(attrgetter(path), views))


def _ring_lines(rows: list[tuple[str, RingView]]) -> str:
    """The ring families' lines, for (label text, ring) rows."""
    out = [header("ringwatch_ring_members")]
    for lb, ring in rows:
        out += [
            f'ringwatch_ring_members{{{lb},state="{state}"}} {count}\n'
            for state, count in ring.state_counts.items()
        ]
    out.append(header("ringwatch_ring_stale_members"))
    out += [f"ringwatch_ring_stale_members{{{lb}}} {r.stale_members}\n" for lb, r in rows]
    out.append(header("ringwatch_ring_oldest_heartbeat_timestamp_seconds"))
    out += [
        f"ringwatch_ring_oldest_heartbeat_timestamp_seconds{{{lb}}} {r.oldest_heartbeat}\n"
        for lb, r in rows
        if r.oldest_heartbeat is not None
    ]
    out.append(header("ringwatch_ring_tokens"))
    out += [f"ringwatch_ring_tokens{{{lb}}} {r.tokens}\n" for lb, r in rows]
    return "".join(out)


class Renderer:
    """Renders member and ring series once per scan; a block unchanged since is reused."""

    def __init__(self, member_states: str = "all") -> None:
        self.families = member_families(member_states)
        # (table, ring) -> member -> its label text; one dict a ring, so a lookup
        # hashes only the member id (a str caches its hash). Kept across scans, the
        # same strings also make comparing a block's labels cheap (render at 10k
        # members, benchmarks/member_costs.py: 2.19 -> 1.72 us a member).
        self._labels: dict[tuple[str, str], dict[str, str]] = {}
        # block key -> (labels, values, rendered lines) of the last render, reused while
        # both are unchanged (render at 10k members: 5.48 -> 1.72 us a member)
        self._blocks: dict[str, tuple[list[str], list[Any], bytes]] = {}

    def _member_labels(
        self,
        table: str,
        ring: str,
        views: Sequence[MemberView],
        labels: dict[tuple[str, str], dict[str, str]],
    ) -> list[str]:
        """Each view's label text; the ring's cache, pruned to these members, into `labels`."""
        old = self._labels.get((table, ring), {})
        cache = labels[(table, ring)] = {}
        prefix = f'table="{escape_label(table)}",ring="{escape_label(ring)}",member="'
        out = []
        for view in views:
            name = view.member.name
            text = old.get(name)
            if text is None:
                text = f'{prefix}{escape_label(name)}"'
            cache[name] = text
            out.append(text)
        return out

    def render(self, tables: Sequence[TableView]) -> bytes:
        """The exposition of these tables' member and ring series."""
        return b"".join(self.render_parts(tables))

    def render_parts(self, tables: Sequence[TableView]) -> list[bytes]:
        """`render`'s bytes in parts, the blocks kept for the next scan among them:
        holding the parts costs no second copy of the exposition."""
        labels: list[str] = []
        views: list[MemberView] = []
        ring_rows: list[tuple[str, RingView]] = []
        label_cache: dict[tuple[str, str], dict[str, str]] = {}
        for table in tables:
            for ring in table.rings:
                labels += self._member_labels(table.table, ring.ring, ring.members, label_cache)
                views += ring.members
                ring_rows.append(
                    (f'table="{escape_label(table.table)}",ring="{escape_label(ring.ring)}"', ring)
                )
        self._labels = label_cache
        out: list[bytes] = []
        blocks: dict[str, tuple[list[str], list[Any], bytes]] = {}
        if views:
            columns: dict[str, list[Any]] = {}
            members = [view.member for view in views]
            for name, family in self.families:
                parts = []
                for block in family:
                    values = columns.get(block.column)
                    if values is None:
                        values = columns[block.column] = _column(views, members, block.column)
                    blocks[block.key] = self._block(name, block, labels, values)
                    parts.append(blocks[block.key][2])
                if any(parts):  # a family no member has (no period known, no ttl) is left out
                    out.append(_HEADER_BYTES[name])
                    out += parts
        self._blocks = blocks
        if ring_rows:
            out.append(_ring_lines(ring_rows).encode())
        return out

    def _block(
        self, name: str, block: _Block, labels: list[str], values: list[Any]
    ) -> tuple[list[str], list[Any], bytes]:
        """A block's lines, made again only if its labels or values changed since the last
        render. Most blocks (state, info, tokens, ownership, ...) do not move between
        scans, and comparing the lists is cheap: their label strings are the same
        objects from scan to scan."""
        cached = self._blocks.get(block.key)
        if cached is not None and cached[0] == labels and cached[1] == values:
            return cached
        if block.labels_of is not None:
            lines = "".join(
                [
                    f"{name}{{{lb}{x}}} 1\n"
                    for lb, x in zip(labels, map(block.labels_of, values), strict=True)
                ]
            )
            return labels, values, lines.encode()
        rows: Iterable[tuple[str, Any]] = zip(labels, values, strict=True)
        if block.few and block.text is not None:
            texts = {value: block.text(value) for value in set(values)}
            rows = zip(labels, map(texts.__getitem__, values), strict=True)
        elif block.text is not None:
            rows = zip(labels, map(block.text, values), strict=True)
        if block.optional:
            rows = [(lb, v) for lb, v in rows if v is not None]
        extra = block.labels
        lines = "".join([f"{name}{{{lb}{extra}}} {v}\n" for lb, v in rows])
        return labels, values, lines.encode()
