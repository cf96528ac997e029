"""ringwatch's own metrics (per table), kept with prometheus_client.

Like every Prometheus exporter: process_* (CPU, memory, file descriptors), python_info and
python_gc_*, and no `_created` series (client_python's text format writes one gauge per
counter and histogram child otherwise).
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from ringwatch import __version__, revision
from ringwatch.cortex.decode import REASONS
from ringwatch.cortex.proto import protobuf_backend

SCAN_RESULTS = ("success", "timeout", "throttled", "error")
DECODE_REASONS = REASONS
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# Process-wide in client_python; ringwatch never wants them.
disable_created_metrics()


class CollectedPerScan(Collector):
    """Process, platform and GC facts collected once per scan, not per scrape, so that a
    scrape reads nothing (not even /proc); they are at most one scan interval old."""

    def __init__(self) -> None:
        self._collectors = (
            ProcessCollector(registry=None),
            PlatformCollector(registry=None),
            GC_COLLECTOR,
        )
        self._families: list[Any] = []
        self.refresh()

    def refresh(self) -> None:
        """Collect the wrapped collectors now."""
        self._families = [family for c in self._collectors for family in c.collect()]

    def collect(self) -> Iterable[Any]:
        """What the last refresh collected."""
        return iter(self._families)


class SelfMetrics:
    """ringwatch's own metrics: scans, requests, decode errors, build and process facts."""

    def __init__(self, tables: Sequence[str], operations: Sequence[str]) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.process = CollectedPerScan()
        registry.register(self.process)
        self.up = Gauge(
            "ringwatch_up",
            "1 if the last scan of the table succeeded.",
            ["table"],
            registry=registry,
        )
        self.last_success = Gauge(
            "ringwatch_last_successful_scan_timestamp_seconds",
            "Unix time the last successful scan of the table started.",
            ["table"],
            registry=registry,
        )
        self.scan_duration = Histogram(
            "ringwatch_scan_duration_seconds",
            "Whole scans of a table, failed ones included.",
            ["table"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.scans = Counter(
            "ringwatch_scans", "Scans of a table by result.", ["table", "result"], registry=registry
        )
        self.requests = Counter(
            "ringwatch_requests",
            "DynamoDB request attempts, retries included, by result.",
            ["table", "operation", "result"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "ringwatch_request_duration_seconds",
            "Each DynamoDB request attempt.",
            ["table", "operation"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.consumed_capacity = Counter(
            "ringwatch_consumed_capacity_units",
            "Read capacity units DynamoDB reported.",
            ["table"],
            registry=registry,
        )
        self.decode_errors = Counter(
            "ringwatch_decode_errors",
            "Items that could not be read, by reason; the scan goes on without them.",
            ["table", "reason"],
            registry=registry,
        )
        self.members_served = Gauge(
            "ringwatch_snapshot_members",
            "Members in the snapshot currently served for the "
            "table (0 once it is older than --snapshot.max-age).",
            ["table"],
            registry=registry,
        )
        build = Gauge(
            "ringwatch_build_info",
            "Always 1; build facts as labels.",
            ["version", "revision", "python_version", "protobuf_backend"],
            registry=registry,
        )
        build.labels(__version__, revision(), platform.python_version(), protobuf_backend()).set(1)

        for table in tables:
            self.up.labels(table).set(0)
            self.consumed_capacity.labels(table)
            for result in SCAN_RESULTS:
                self.scans.labels(table, result)
                for operation in operations:
                    self.requests.labels(table, operation, result)
            for operation in operations:
                self.request_duration.labels(table, operation)
            for reason in DECODE_REASONS:
                self.decode_errors.labels(table, reason)
            self.members_served.labels(table).set(0)

    def render(self) -> bytes:
        """Text format 0.0.4."""
        return generate_latest(self.registry)

    def render_openmetrics(self) -> bytes:
        """OpenMetrics 1.0.0, ending in `# EOF`."""
        body: bytes = generate_openmetrics(self.registry)  # the library leaves it untyped
        return body
