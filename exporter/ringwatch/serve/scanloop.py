"""The scan loop: read every table, build a snapshot, render it, swap it in.

Scans run one after another (never overlapping) in one background task. The
HTTP side only ever reads `ScanLoop.exposition()`, `ScanLoop.metrics_page()` and
the health facts here; nothing it calls does I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
import time
import weakref
import zlib
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar, cast

from ringwatch.config import Config
from ringwatch.dynamodb.client import open_client
from ringwatch.dynamodb.reader import TableRead, current_table, read_tables
from ringwatch.gcpause import gc_paused
from ringwatch.logs import RateLimitedLog, log
from ringwatch.render.exposition import Renderer
from ringwatch.serve.selfmetrics import SelfMetrics
from ringwatch.snapshot.builder import SnapshotBuilder
from ringwatch.snapshot.model import Snapshot, TableView

_COUNTER_TYPE = re.compile(rb"# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*)_total counter\n")
# Undecodable items logged per scan at most; the rest are summed up in one line.
MAX_DECODE_LOG_LINES = 20
# ringwatch_scans_total's result for a scan that failed on a bug in ringwatch.
CRASHED = "crashed"

_T = TypeVar("_T")


def openmetrics_from_text(body: bytes) -> bytes:
    """Text format 0.0.4 -> OpenMetrics 1.0.0, without the final `# EOF`.

    The samples are the same; only a counter's HELP and TYPE name the family without
    its `_total`, as OpenMetrics wants."""
    for name in set(_COUNTER_TYPE.findall(body)):
        for kind in (b"HELP", b"TYPE"):
            body = body.replace(b"# %s %s_total " % (kind, name), b"# %s %s " % (kind, name))
    return body


@dataclass(frozen=True, eq=False)
class ServedExposition:
    """Member and ring series of the tables still fresh, rendered once per scan.

    Kept as the renderer's parts (the family blocks it keeps for the next scan
    anyway); anything derived from them (OpenMetrics, gzip, JSON, HTML) is made at
    most once, when first asked for."""

    snapshot: Snapshot
    fresh_tables: frozenset[str]
    parts: tuple[bytes, ...]
    _derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def cached(self, key: str, make: Callable[[], _T]) -> _T:
        """Something derived from this exposition, made at most once."""
        value = self._derived.get(key)
        if value is None:
            value = self._derived[key] = make()
        return cast(_T, value)  # `key` always maps to what `make` makes

    @property
    def body(self) -> bytes:
        """The exposition in text format 0.0.4 as one bytes value."""
        return self.cached("body", lambda: b"".join(self.parts))

    def text(self, openmetrics: bool) -> tuple[bytes, ...]:
        """The exposition in text format 0.0.4 or OpenMetrics (no `# EOF`), in parts."""
        if openmetrics:
            return (self.cached("openmetrics", lambda: openmetrics_from_text(self.body)),)
        return self.parts

    def file(self, openmetrics: bool) -> BinaryIO:
        """`text(openmetrics)` in an anonymous in-memory file, written once; closed
        when this exposition is dropped."""

        def make() -> BinaryIO:
            file = memory_file(self.text(openmetrics))
            weakref.finalize(self, file.close)
            return file

        return self.cached(f"file openmetrics={openmetrics}", make)

    def gzip_start(self, openmetrics: bool) -> GzipStart:
        """The start of a gzip stream of `text(openmetrics)`, to be ended by a page's tail."""
        return self.cached(
            f"gzip openmetrics={openmetrics}", lambda: GzipStart.of(self.text(openmetrics))
        )


def memory_file(parts: tuple[bytes, ...]) -> BinaryIO:
    """`parts` in an anonymous in-memory file (memfd where there is one)."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        file: BinaryIO = open(memfd_create("ringwatch-metrics", os.MFD_CLOEXEC), "w+b", buffering=0)
    else:
        file = tempfile.TemporaryFile()
    file.writelines(parts)
    file.flush()
    return file


@dataclass(frozen=True)
class MetricsPage:
    """One /metrics body: `head` (the exposition, made once per scan) then `tail` (the
    self metrics, which change while scanning).

    Uncompressed, `head` is also in `head_file`, for one `sendfile` a scrape: at
    10k members (20 MB) and 50 concurrent scrapers a request costs 2.2 ms of CPU so,
    as a static file does (2.2), against 5.5 when the same bytes are written from
    memory, 2.1x the static file (`benchmarks/bench.py --serve-only`). Gzipped pages
    (0.9 MB) are written: 0.43 ms against 0.39 for a static .gz file."""

    head: tuple[bytes, ...]
    tail: bytes
    head_file: BinaryIO | None
    # Keeps the exposition (and so `head_file`) open while a response is in flight.
    exposition: ServedExposition | None = None

    @property
    def size(self) -> int:
        """Bytes in the body."""
        return sum(map(len, self.head)) + len(self.tail)


@dataclass(frozen=True)
class GzipStart:
    """The compressed start of one gzip stream and the compressor's state after it.

    A page is this exposition's bytes, compressed once per scan, followed by the
    self metrics, which change more often: a copy of the compressor ends the same
    stream with them, so a client with a single inflater reads the whole page."""

    head: bytes
    compressor: Any

    @classmethod
    def of(cls, parts: tuple[bytes, ...]) -> GzipStart:
        """Compress `parts` (level 1: a scrape is CPU-bound, not bandwidth-bound)."""
        compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return cls(b"".join(map(compressor.compress, parts)), compressor)

    def end(self, tail: bytes) -> tuple[bytes, bytes]:
        """The whole stream, in two parts: the head and `tail` compressed to the end."""
        compressor = self.compressor.copy()
        return self.head, compressor.compress(tail) + compressor.flush()


class ScanLoop:
    """The scan loop of `ringwatch serve` and the facts the HTTP side reads (no I/O there)."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        operations = ("Query",) if config.ring_keys else ("Scan",)
        self.metrics = SelfMetrics(config.tables, operations)
        self.builder = SnapshotBuilder(
            stale_after=config.stale_after,
            stale_periods=config.stale_periods,
            stale_floor=config.stale_floor,
        )
        self.renderer = Renderer(config.member_states)
        self.snapshot: Snapshot | None = None
        self._exposition: ServedExposition | None = None
        self.client: Any = None
        self.started_monotonic = time.monotonic()
        self.last_scan_finished: float | None = None
        self.scans_finished = 0
        self.ended: str | None = None
        self._failure_log = RateLimitedLog()
        self._decode_log = RateLimitedLog()
        self._decode_keys: dict[str, set[str]] = {}
        self._seen_tables: set[str] = set()
        # Bumped whenever one of self.metrics changes: a scrape renders them only then.
        self._own_version = 0
        self._pages: dict[tuple[bool, bool], MetricsPage] = {}
        self._empty_file = memory_file(())
        self._pages_of: ServedExposition | None = None
        self._pages_version = -1

    # -- facts for the HTTP side (no I/O) ---------------------------------
    @property
    def ready(self) -> bool:
        """True once the first scan of every table finished, good or bad."""
        return self.scans_finished > 0

    def healthy(self) -> bool:
        """False once the loop has ended, or no scan has finished for --scan.interval +
        --scan.timeout + 30 s."""
        if self.ended is not None:
            return False
        bound = self.config.scan_interval + self.config.scan_timeout + 30.0
        since = self.last_scan_finished or self.started_monotonic
        return time.monotonic() - since <= bound

    def exposition(self) -> ServedExposition | None:
        """The member and ring series to serve now (tables past --snapshot.max-age left
        out); None before the first scan ended."""
        snapshot = self.snapshot
        if snapshot is None:
            return None
        fresh = self._fresh_tables(snapshot)
        current = self._exposition
        if current is None or current.snapshot is not snapshot or current.fresh_tables != fresh:
            current = self._render(snapshot, fresh)
        return current

    def self_metrics(self, openmetrics: bool = False) -> bytes:
        """ringwatch's own metrics; in OpenMetrics they end with `# EOF`."""
        return self.metrics.render_openmetrics() if openmetrics else self.metrics.render()

    def metrics_page(self, openmetrics: bool, gzipped: bool) -> MetricsPage:
        """The whole /metrics body: the exposition (none before the first scan) then
        the self metrics, as text or OpenMetrics, gzipped as one stream or not.

        Made once per format after anything on it changed (the exposition, or one of
        the self metrics: only while scanning), whatever the state."""
        exposition = self.exposition()
        if self._pages_of is not exposition or self._pages_version != self._own_version:
            self._pages, self._pages_of = {}, exposition
            self._pages_version = self._own_version
        page = self._pages.get((openmetrics, gzipped))
        if page is None:
            own = self.self_metrics(openmetrics)
            if gzipped:
                start = exposition.gzip_start(openmetrics) if exposition else GzipStart.of(())
                head, tail = start.end(own)
                page = MetricsPage((head,), tail, None, exposition)
            elif exposition is None:
                page = MetricsPage((), own, self._empty_file)
            else:
                page = MetricsPage(
                    exposition.text(openmetrics), own, exposition.file(openmetrics), exposition
                )
            self._pages[(openmetrics, gzipped)] = page
        return page

    # -- scanning ---------------------------------------------------------
    def _fresh_tables(self, snapshot: Snapshot) -> frozenset[str]:
        now = self.clock()
        return frozenset(
            t.table
            for t in snapshot.tables
            if t.scanned_at is not None and now - t.scanned_at <= self.config.snapshot_max_age
        )

    def _render(self, snapshot: Snapshot, fresh: frozenset[str]) -> ServedExposition:
        tables = [t for t in snapshot.tables if t.table in fresh]
        exposition = ServedExposition(snapshot, fresh, tuple(self.renderer.render_parts(tables)))
        self._own_version += 1
        for table in snapshot.tables:
            served = sum(len(r.members) for r in table.rings) if table.table in fresh else 0
            self.metrics.members_served.labels(table.table).set(served)
        self._exposition = exposition
        return exposition

    async def open(self, stack: AsyncExitStack) -> None:
        """Open the DynamoDB client, closed with `stack`."""
        self.client = await open_client(self.config, stack, observer=self.observe_attempt)

    def observe_attempt(self, operation: str, result: str, seconds: float) -> None:
        """Count and time one DynamoDB attempt of the table being read."""
        table = current_table.get()
        self._own_version += 1
        self.metrics.requests.labels(table, operation, result).inc()
        self.metrics.request_duration.labels(table, operation).observe(seconds)

    async def scan_once(self) -> Snapshot:
        """Read every table, build and render the next snapshot, swap it in."""
        # No cyclic GC for the whole scan, reading included: each collection would
        # walk every page dict and member object (scans make no cycles; 30-40% of a
        # 10k-member cycle). It resumes between scans.
        with gc_paused():
            return await self._scan_once()

    async def _scan_once(self) -> Snapshot:
        config = self.config
        # Pages are decoded as they arrive and their dicts freed: a scan never
        # holds every page of a table at once.
        self.builder.start_scan()
        reads = await read_tables(
            self.client,
            config.tables,
            config.ring_keys,
            consistent_read=config.consistent_read,
            scan_timeout=config.scan_timeout,
            observer=self.observe_attempt,
            wall_clock=self.clock,
            on_page=self.builder.decode_page,
        )
        snapshot = self.builder.build(reads, self.snapshot, self.clock())
        self._account(reads, snapshot)
        self.snapshot = snapshot
        self._render(snapshot, self._fresh_tables(snapshot))
        self.metrics.process.refresh()
        self._own_version += 1
        self.last_scan_finished = time.monotonic()
        self.scans_finished += 1
        return snapshot

    def _account(self, reads: list[TableRead], snapshot: Snapshot) -> None:
        m = self.metrics
        self._own_version += 1
        for read in reads:
            table = read.table
            m.scans.labels(table, read.result).inc()
            m.scan_duration.labels(table).observe(read.duration)
            m.consumed_capacity.labels(table).inc(read.consumed_capacity)
            view = snapshot.table(table)
            assert view is not None
            if read.ok:
                m.up.labels(table).set(1)
                m.last_success.labels(table).set(read.started_at)
                for err in view.decode_errors:
                    m.decode_errors.labels(table, err.reason).inc()
            else:
                m.up.labels(table).set(0)
            self._log_table(read, view)

    def _log_table(self, read: TableRead, view: TableView) -> None:
        """Log what changed: each state change once, a persisting failure at most
        every 5 minutes (and at once when its kind changes)."""
        table, now = read.table, time.monotonic()
        if not read.ok:
            if self._failure_log.should_log(table, now, kind=read.result):
                log(
                    logging.WARNING,
                    "scan failed",
                    table=table,
                    result=read.result,
                    error=read.error,
                    duration=round(read.duration, 3),
                    serving_last_good=view.scanned_at is not None,
                    suppressed=self._failure_log.suppressed(table),
                )
            return
        failed_scans = self._failure_log.end(table)
        if failed_scans is not None:
            log(logging.INFO, "scan recovered", table=table, failed_scans=failed_scans)
        self._log_decode_errors(table, view, now)
        first = table not in self._seen_tables
        self._seen_tables.add(table)
        if first:
            log(
                logging.INFO,
                "first scan",
                table=table,
                rings=len(view.rings),
                members=sum(len(r.members) for r in view.rings),
                stale=sum(r.stale_members for r in view.rings),
            )
            for ring_view in view.rings:
                for v in ring_view.members:
                    if v.stale:
                        log(
                            logging.WARNING,
                            "member is stale",
                            table=table,
                            ring=ring_view.ring,
                            member=v.member.name,
                            state=v.member.state,
                            heartbeat_age=round(v.heartbeat_age, 1),
                            stale_threshold=v.stale_threshold,
                        )
            return
        for ring, was, v in view.changes:
            key = (ring, v.member.name)
            fields = {
                "table": table,
                "ring": key[0],
                "member": key[1],
                "state": v.member.state,
                "heartbeat_age": round(v.heartbeat_age, 1),
            }
            if was is None:
                log(logging.INFO, "member appeared", **fields)
                continue
            if was.member.state != v.member.state:
                log(logging.INFO, "member changed state", previous_state=was.member.state, **fields)
            if v.stale and not was.stale:
                # Judged once, in the snapshot (snapshot.problems): the same members
                # are stale here, on /ring, in `scan` and in the roll-ups.
                log(
                    logging.WARNING,
                    "member went stale",
                    stale_threshold=v.stale_threshold,
                    heartbeat_period=v.heartbeat_period,
                    **fields,
                )
            elif was.stale and not v.stale:
                log(logging.INFO, "member recovered", **fields)
        for ring, name in view.gone:
            log(logging.INFO, "member disappeared", table=table, ring=ring, member=name)

    def _log_decode_errors(self, table: str, view: TableView, now: float) -> None:
        """An undecodable item is logged when first seen, then every 5 minutes while
        it stays so; at most MAX_DECODE_LOG_LINES lines a scan, then one line with the
        count. The counter says how often each was skipped."""
        current = set()
        logged = unlogged = 0
        for err in view.decode_errors:
            key = f"{table}\x00{err.ring}\x00{err.member}"
            current.add(key)
            if not self._decode_log.should_log(key, now, kind=err.reason):
                continue
            if logged >= MAX_DECODE_LOG_LINES:
                unlogged += 1
                continue
            logged += 1
            log(
                logging.WARNING,
                "item skipped: cannot decode",
                table=table,
                ring=err.ring,
                member=err.member,
                reason=err.reason,
                error=err.detail,
                suppressed=self._decode_log.suppressed(key),
            )
        if unlogged:
            log(
                logging.WARNING,
                "more items skipped: cannot decode (not logged one by one)",
                table=table,
                not_logged=unlogged,
                undecodable=len(view.decode_errors),
            )
        for key in self._decode_keys.get(table, set()) - current:
            self._decode_log.end(key)
        self._decode_keys[table] = current

    def _account_crash(self) -> None:
        """A scan that died on a bug is still a finished, failed scan of every table:
        counted as `crashed`, `ringwatch_up` 0, and it counts as finished for `/-/ready`."""
        self._own_version += 1
        for table in self.config.tables:
            self.metrics.scans.labels(table, CRASHED).inc()
            self.metrics.up.labels(table).set(0)
        self.last_scan_finished = time.monotonic()
        self.scans_finished += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Scan every --scan.interval until `stop` is set.

        A scan that fails on a bug is counted and logged, and the loop goes on. If the
        loop itself ends on anything else, `ended` says why (and /-/healthy turns 503
        at once) before the exception is passed on."""
        try:
            await self._scan_every_interval(stop)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.ended = f"{type(exc).__name__}: {exc}"
            raise
        if not stop.is_set():
            self.ended = "returned before shutdown"

    async def _scan_every_interval(self, stop: asyncio.Event) -> None:
        interval = self.config.scan_interval
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self.scan_once()
            except Exception:  # a bug must not end the loop: log it and scan again
                logging.getLogger("ringwatch").exception("scan crashed")
                self._account_crash()
            delay = max(0.0, interval - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
