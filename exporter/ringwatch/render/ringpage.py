"""The /ring page: every member of every ring, oldest heartbeat first.

Rendered from the snapshot alone (no I/O), plain HTML and inline CSS, no
JavaScript. Member ages are as of the scan that produced the snapshot, like
the metrics; the page says how old that scan is.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from ringwatch.render.wording import (
    by_heartbeat_age,
    format_age,
    format_time,
    plural,
    stale_rule_text,
    state_summary,
)
from ringwatch.snapshot.model import MemberView, RingView, Snapshot, TableView
from ringwatch.units import format_duration

_STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em;
color:#1d232b;background:#fff}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.25em;margin:1.6em 0 .3em}
h3{font-size:1.05em;margin:1.2em 0 .2em;font-family:ui-monospace,Menlo,Consolas,monospace}
a{color:#1f5fbf}.meta,.summary{color:#4a5563;margin:.2em 0}
.banner{padding:.5em .8em;border-radius:4px;margin:.4em 0;max-width:70em}
.banner.failed{background:#fde8e8;border:1px solid #d33;color:#8a1010}
.banner.expired{background:#fff4d6;border:1px solid #c90;color:#6b4e00}
.banner.decode{background:#fde8e8;border:1px solid #d33}
table.members{border-collapse:collapse;margin:.4em 0 1em;width:100%;max-width:90em;
table-layout:fixed}
.members th,.members td{padding:.25em .6em;border-bottom:1px solid #e3e6ea;text-align:left;
overflow-wrap:anywhere}
.members th{background:#f3f5f7;font-weight:600}
ul.overview{margin:.4em 0;padding-left:1.2em}
.members td.num{text-align:right;font-variant-numeric:tabular-nums}
.members td.member{font-family:ui-monospace,Menlo,Consolas,monospace}
tr.stale td{background:#fde8e8}tr.stale td.age{color:#b00000;font-weight:700}
.badge{display:inline-block;padding:0 .45em;border-radius:3px;font-size:.8em;font-weight:700;
letter-spacing:.03em;vertical-align:1px}
.badge.stale,.badge.failed{background:#c81e1e;color:#fff}
.badge.ok{background:#1f7a3a;color:#fff}.badge.expired{background:#c90;color:#fff}
.state{font-weight:600}.state-active{color:#1f7a3a}
.state-joining,.state-pending,.state-leaving{color:#a05a00}
.state-left,.state-unknown{color:#b00000}.state-readonly{color:#555}
.bar{display:inline-block;width:calc(100% - 5em);height:.8em;background:#e3e6ea;border-radius:2px;
vertical-align:middle;margin-right:.5em;overflow:hidden}
.bar .fill{height:100%;background:#3b73c4}
tr.stale .bar .fill{background:#c81e1e}
.muted{color:#6b7480}
"""


def _escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def _age_cell(age: float) -> str:
    skew = " <span class=muted>(clock skew)</span>" if age < 0 else ""
    return f"{_escape(format_age(age))}{skew}"


def _period_cell(view: MemberView) -> str:
    """The learned heartbeat period and the stale threshold it gives."""
    period = view.heartbeat_period
    shown = (
        '<span class=muted title="not known yet">-</span>'
        if period is None
        else _escape(format_duration(period))
    )
    data = "" if period is None else f' data-period="{period}"'
    return (
        f'<td class="period num"{data} data-threshold="{view.stale_threshold!r}">'
        f"{shown} / {_escape(format_duration(view.stale_threshold))}</td>"
    )


def _member_row(view: MemberView, scan_time: float) -> str:
    m = view.member
    badge = ' <span class="badge stale">STALE</span>' if view.stale else ""
    if m.registered_timestamp:
        registered = (
            f"{_escape(format_time(m.registered_timestamp))}<br>"
            f"<span class=muted>{_escape(format_age(scan_time - m.registered_timestamp))}"
            f" ago</span>"
        )
    else:
        registered = "<span class=muted>unknown</span>"
    unchanged = scan_time - view.cas_last_change
    cas_note = (
        f" <span class=muted>unchanged {_escape(format_age(unchanged))}</span>"
        if unchanged > 0
        else ""
    )
    percent = f"{view.ownership * 100:.2f}"
    state = _escape(m.state)
    return (
        f'<tr class="{"stale" if view.stale else "fresh"}" data-member="{_escape(m.name)}">'
        f'<td class="member">{_escape(m.name)}{badge}</td>'
        f'<td class="zone">{_escape(m.zone) or "<span class=muted>-</span>"}</td>'
        f'<td class="state state-{state.lower()}">{state}</td>'
        f'<td class="addr">{_escape(m.addr)}</td>'
        f'<td class="age num" data-seconds="{view.heartbeat_age:.3f}">'
        f"{_age_cell(view.heartbeat_age)}</td>"
        f"{_period_cell(view)}"
        f'<td class="registered">{registered}</td>'
        f'<td class="version num">{m.version}{cas_note}</td>'
        f'<td class="tokens num">{len(m.tokens)}</td>'
        f'<td class="ownership" data-ratio="{view.ownership!r}">'
        f'<div class="bar"><div class="fill" style="width:{percent}%"></div></div>'
        f"{percent}%</td></tr>"
    )


_COLUMNS = (
    ("Member", 15),
    ("Zone", 6),
    ("State", 8),
    ("Address", 11),
    ("Heartbeat age", 8),
    ("Period / stale after", 9),
    ("Registered", 16),
    ("CAS version", 9),
    ("Tokens", 6),
    ("Ownership", 12),
)  # (heading, width %)
_HEAD = (
    "<colgroup>"
    + "".join(f'<col style="width:{w}%">' for _, w in _COLUMNS)
    + "</colgroup><thead><tr>"
    + "".join(f"<th>{c}</th>" for c, _ in _COLUMNS)
    + "</tr></thead>"
)


def _ring(ring: RingView, scan_time: float) -> str:
    rows = "".join(_member_row(v, scan_time) for v in by_heartbeat_age(ring.members))
    stale = (
        f'<span class="badge stale">{ring.stale_members} STALE</span>'
        if ring.stale_members
        else "0 stale"
    )
    return (
        f'<section class="ring" data-ring="{_escape(ring.ring)}">'
        f"<h3>{_escape(ring.ring)}</h3>"
        f'<p class="summary">{_escape(plural(len(ring.members), "member"))}: '
        f"{_escape(state_summary(ring))} · {stale} · {_escape(plural(ring.tokens, 'token'))}</p>"
        f'<table class="members">{_HEAD}'
        f"<tbody>{rows}</tbody></table></section>"
    )


# (key, make) -> bytes, made at most once per snapshot (the served exposition's `cached`).
Cache = Callable[[str, Callable[[], bytes]], bytes]


def _rings(table: TableView) -> str:
    """Everything about a served table's members; depends on the snapshot only."""
    assert table.scanned_at is not None  # a served table has had a good scan
    if not table.rings:
        return '<p class="meta">No ring members in this table.</p>'
    return "".join(_ring(ring, table.scanned_at) for ring in table.rings)


def _table(
    table: TableView, fresh: bool, now: float, max_age: float | None, cache: Cache | None
) -> str:
    name = _escape(table.table)
    parts = [f'<section class="table" id="table-{name}" data-table="{name}">']
    status = (
        '<span class="badge ok">OK</span>'
        if table.ok
        else '<span class="badge failed">LAST SCAN FAILED</span>'
    )
    parts.append(f"<h2>Table {_escape(table.table)} {status}</h2>")
    if table.scanned_at is not None:
        parts.append(
            f'<p class="meta">Last successful scan: {_escape(format_time(table.scanned_at))}'
            f" ({_escape(format_age(now - table.scanned_at))} ago).</p>"
        )
    else:
        parts.append('<p class="meta">No successful scan yet.</p>')
    if not table.ok:
        parts.append(
            f'<p class="banner failed">The last scan, at {_escape(format_time(table.attempted_at))}'
            f", failed ({_escape(table.result)}): {_escape(table.error)}"
            + (". Showing the last good scan." if fresh and table.rings else ".")
            + "</p>"
        )
    if table.scanned_at is not None and not fresh:
        limit = f" (--snapshot.max-age={_escape(format_duration(max_age))})" if max_age else ""
        parts.append(
            f'<p class="banner expired"><span class="badge expired">EXPIRED</span> The last '
            f"good scan is older than the snapshot's maximum age{limit}: its members are no "
            "longer served, here or in /metrics.</p>"
        )
    if table.decode_errors:
        items = "".join(
            f"<li>{_escape(f'{e.ring}/{e.member}: {e.reason}: {e.detail}')}</li>"
            for e in table.decode_errors
        )
        parts.append(
            f'<div class="banner decode"><strong>'
            f"{_escape(plural(len(table.decode_errors), 'item'))} could not be decoded "
            f"and {'is' if len(table.decode_errors) == 1 else 'are'} not shown:"
            f"</strong><ul>{items}</ul></div>"
        )
    if fresh and table.scanned_at is not None:
        if cache is None:
            parts.append(_rings(table))
        else:
            parts.append(cache(f"ring.html:{table.table}", lambda: _rings(table).encode()).decode())
    parts.append("</section>")
    return "".join(parts)


def _overview(table: TableView, fresh: bool) -> str:
    """One line per table at the top: is it being scanned, and is anything stale."""
    link = f'<a href="#table-{_escape(table.table)}">{_escape(table.table)}</a>'
    if not table.ok:
        status = (
            f'<span class="badge failed">LAST SCAN FAILED</span> '
            f"({_escape(table.result)}): {_escape(table.error)}"
        )
    elif not fresh:
        status = '<span class="badge expired">EXPIRED</span>'
    else:
        status = '<span class="badge ok">OK</span>'
    if fresh:
        members = sum(len(r.members) for r in table.rings)
        stale = sum(r.stale_members for r in table.rings)
        counts = (
            f"{_escape(plural(len(table.rings), 'ring'))}, {_escape(plural(members, 'member'))}, "
            + (f'<span class="badge stale">{stale} STALE</span>' if stale else "0 stale")
        )
        if table.decode_errors:
            counts += f", {_escape(plural(len(table.decode_errors), 'undecodable item'))}"
        status += f" · {counts}"
    return f"<li>{link}: {status}</li>"


def _document(title: str, body: str, metrics_path: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_escape(title)}</title><style>{_STYLE}</style></head><body>"
        f'<p class="meta"><a href="./">ringwatch</a> · <a href="ring.json">ring.json</a>'
        f' · <a href="{_escape(metrics_path.lstrip("/"))}">metrics</a></p>{body}</body></html>\n'
    )


def render_page(
    snapshot: Snapshot | None,
    fresh_tables: frozenset[str],
    now: float,
    *,
    snapshot_max_age: float | None = None,
    cache: Cache | None = None,
    metrics_path: str = "/metrics",
) -> str:
    """The whole page; with `cache` (one per snapshot), the member tables are
    rendered once per snapshot, not on every request."""
    if snapshot is None:
        return _document(
            "ringwatch: ring members",
            "<h1>Ring members</h1><p>No scan has finished yet.</p>",
            metrics_path,
        )
    stale = sum(
        r.stale_members for t in snapshot.tables if t.table in fresh_tables for r in t.rings
    )
    failed = [t.table for t in snapshot.tables if not t.ok]
    title = "ringwatch: " + ", ".join(
        [
            *([f"{stale} stale"] if stale else []),
            *([f"{len(failed)} scan failing"] if failed else []),
        ]
        or ["ring members"]
    )
    header = (
        "<h1>Ring members</h1>"
        f'<p class="meta" id="snapshot">Snapshot of the scan at '
        f"{_escape(format_time(snapshot.created_at))}, <strong>"
        f"{_escape(format_age(now - snapshot.created_at))} old</strong>. Members are sorted by "
        f"heartbeat age, oldest first; ages are as of the scan. A member is stale when its "
        f"heartbeat is older than {_escape(stale_rule_text(snapshot))}: its period (as "
        f"ringwatch observed it) and threshold are shown beside its age.</p>"
    )
    overview = "".join(_overview(t, t.table in fresh_tables) for t in snapshot.tables)
    tables = "".join(
        _table(t, t.table in fresh_tables, now, snapshot_max_age, cache) for t in snapshot.tables
    )
    return _document(title, f'{header}<ul class="overview">{overview}</ul>{tables}', metrics_path)
