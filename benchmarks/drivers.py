"""The measured programs. bench.py runs each as its own process (so its CPU and
peak RSS are its own) and reads one JSON line from its stdout.

  floor   fetch every Scan page over HTTP (http.client) and json.loads it
  steady  ringwatch's ScanLoop: scan cycles (fetch, decode, snapshot, render),
          then /metrics under concurrent clients vs a static file of that size
  naive   boto3 paginator + upb decode + a prometheus_client collector, at scrape time
  load    concurrent HTTP clients (used by `steady`, never measured itself)
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
for key, value in {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(key, value)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _report(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


class Timer:
    def __enter__(self) -> Timer:
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.cpu = time.process_time() - self.cpu0
        self.wall = time.perf_counter() - self.wall0


# -- (a) the floor ------------------------------------------------------------


def floor(args: argparse.Namespace) -> None:
    url = urlsplit(args.endpoint)
    with Timer() as t:
        conn = http.client.HTTPConnection(url.hostname, url.port)
        request: dict = {"TableName": args.table}
        items = pages = 0
        while True:
            conn.request(
                "POST",
                "/",
                body=json.dumps(request),
                headers={
                    "X-Amz-Target": "DynamoDB_20120810.Scan",
                    "Content-Type": "application/x-amz-json-1.0",
                    "Authorization": "AWS4-HMAC-SHA256 Credential=floor",
                },
            )
            page = json.loads(conn.getresponse().read())
            pages += 1
            items += len(page["Items"])
            if not page.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    _report(items=items, pages=pages, cpu=t.cpu, wall=t.wall, rss_mb=_rss_mb())


# -- (b) ringwatch's steady state ---------------------------------------------


async def _load(url: str, clients: int, requests: int, gzip: bool) -> dict:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__)),
        "load",
        "--url",
        url,
        "--clients",
        str(clients),
        "--requests",
        str(requests),
        *(["--gzip"] if gzip else []),
        stdout=asyncio.subprocess.PIPE,
    )
    cpu0 = time.process_time()
    out, _ = await proc.communicate()
    result = json.loads(out)
    result["server_cpu"] = time.process_time() - cpu0
    result["server_cpu_per_request_ms"] = 1000 * result["server_cpu"] / requests
    return result


async def _serve_and_load(
    exporter: object, body: bytes, gz: bytes, clients: int, requests: int
) -> dict:
    from aiohttp import web

    from ringwatch.serve.http import make_app

    tmp = Path(tempfile.mkdtemp(prefix="ringwatch-bench-"))
    static = tmp / "metrics"
    static.write_bytes(body)
    (tmp / "metrics.gz").write_bytes(gz)

    async def file_handler(_: web.Request) -> web.FileResponse:
        return web.FileResponse(static, headers={"Content-Type": "text/plain"})

    static_app = web.Application()
    static_app.router.add_get("/metrics", file_handler)
    runners = []
    urls = []
    for app in (make_app(exporter), static_app):  # type: ignore[arg-type]
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        runners.append(runner)
        urls.append(f"http://127.0.0.1:{port}/metrics")
    results = {}
    try:
        for gzip in (False, True):
            for name, url in zip(("metrics", "static"), urls, strict=True):
                results[f"{name}{'_gzip' if gzip else ''}"] = await _load(
                    url, clients, requests, gzip
                )
    finally:
        for runner in runners:
            await runner.cleanup()
        shutil.rmtree(tmp)
    return results


async def steady_async(args: argparse.Namespace) -> None:

    from plainrender import plain_render

    from ringwatch.config import load_config
    from ringwatch.serve.scanloop import ScanLoop

    config = load_config(
        [
            "--dynamodb.table",
            args.table,
            "--dynamodb.endpoint-url",
            args.endpoint,
            "--dynamodb.region",
            "us-east-1",
            "--web.listen-address",
            "127.0.0.1:0",
        ],
        environ={},
    )
    exporter = ScanLoop(config)
    renderer = exporter.renderer
    render_times: list[tuple[float, float]] = []
    original_render = renderer.render_parts

    def timed_render(tables):  # type: ignore[no-untyped-def]
        with Timer() as t:
            out = original_render(tables)
        render_times.append((t.cpu, t.wall))
        return out

    renderer.render_parts = timed_render  # type: ignore[method-assign]
    cycles = []
    async with AsyncExitStack() as stack:
        await exporter.open(stack)
        for _ in range(args.cycles):
            with Timer() as t:
                snapshot = await exporter.scan_once()
            cycles.append((t.cpu, t.wall))
        rss_scan = _rss_mb()
        exposition = exporter.exposition()
        body = exposition.body if exposition else b""
        members = sum(len(r.members) for tb in snapshot.tables for r in tb.rings)
        ok = all(tb.ok for tb in snapshot.tables)
        tables = list(snapshot.tables)
        with Timer() as plain_t:
            plain = plain_render(tables, config.member_states)
        page = exporter.metrics_page(openmetrics=False, gzipped=False)
        metrics_body = b"".join((*page.head, page.tail))
        zipped = exporter.metrics_page(openmetrics=False, gzipped=True)
        gz = b"".join((*zipped.head, zipped.tail))
        serving = {}
        if args.serve_requests:
            serving = await _serve_and_load(
                exporter, metrics_body, gz, args.clients, args.serve_requests
            )
    steady = cycles[1:] or cycles
    _report(
        members=members,
        ok=ok,
        first_cycle_cpu=cycles[0][0],
        first_cycle_wall=cycles[0][1],
        cycle_cpu=statistics.median(c for c, _ in steady),
        cycle_wall=statistics.median(w for _, w in steady),
        cycles=cycles,
        render_cpu=statistics.median(c for c, _ in render_times[1:] or render_times),
        render_wall=statistics.median(w for _, w in render_times[1:] or render_times),
        plain_render_cpu=plain_t.cpu,
        render_identical=plain == body,
        metrics_bytes=len(metrics_body),
        metrics_gzip_bytes=len(gz),
        ownership_computations=exporter.builder.ownership_cache.computations,
        rss_scan_mb=rss_scan,
        rss_mb=_rss_mb(),
        serving=serving,
    )


# -- (c) the naive way ----------------------------------------------------------


class NaiveCollector:
    """What a quick exporter does: read the table at scrape time, decode with
    upb, and hand prometheus_client one metric family per ringwatch member series."""

    def __init__(self, client: object, table: str, stale_after: float = 60.0) -> None:
        self.client = client
        self.table = table
        self.stale_after = stale_after
        self.versions: dict[tuple[str, str], tuple[int, float]] = {}

    def collect(self):  # type: ignore[no-untyped-def]
        import cramjam
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from ringwatch.cortex.proto import KNOWN_STATES, STATE_NAMES, InstanceDesc

        now = time.time()
        members = []
        paginator = self.client.get_paginator("scan")  # type: ignore[attr-defined]
        for page in paginator.paginate(TableName=self.table, ReturnConsumedCapacity="TOTAL"):
            for item in page["Items"]:
                data = item["Data"]["B"]
                desc = InstanceDesc.FromString(bytes(cramjam.snappy.decompress_raw(data)))
                ttl = int(item["ttl"]["N"]) if "ttl" in item else None
                members.append(
                    (
                        item["RingKey"]["S"],
                        item["InstanceKey"]["S"],
                        desc,
                        int(item["version"]["N"]),
                        ttl,
                        len(data),
                    )
                )
        members.sort(key=lambda m: (m[0], m[1]))
        by_ring: dict[str, list] = {}
        for m in members:
            by_ring.setdefault(m[0], []).append(m)
        ownership: dict[tuple[str, str], float] = {}
        for ring, ms in by_ring.items():
            points = sorted((t, m[1]) for m in ms for t in m[2].tokens)
            owned = dict.fromkeys((m[1] for m in ms), 0)
            prev = points[-1][0] if points else 0
            for token, name in points:
                owned[name] += (token - prev) % (1 << 32)
                prev = token
            for name, value in owned.items():
                ownership[(ring, name)] = value / (1 << 32)
        L = ["table", "ring", "member"]
        hb = GaugeMetricFamily("ringwatch_member_heartbeat_timestamp_seconds", "h", labels=L)
        age = GaugeMetricFamily("ringwatch_member_heartbeat_age_seconds", "a", labels=L)
        reg = GaugeMetricFamily("ringwatch_member_registered_timestamp_seconds", "r", labels=L)
        state = GaugeMetricFamily("ringwatch_member_state", "s", labels=[*L, "state"])
        info = GaugeMetricFamily("ringwatch_member_info", "i", labels=[*L, "addr", "member_zone"])
        tokens = GaugeMetricFamily("ringwatch_member_tokens", "t", labels=L)
        own = GaugeMetricFamily("ringwatch_member_token_ownership_ratio", "o", labels=L)
        cas = CounterMetricFamily("ringwatch_member_cas_writes", "c", labels=L)
        cas_change = GaugeMetricFamily(
            "ringwatch_member_cas_last_change_timestamp_seconds", "l", labels=L
        )
        size = GaugeMetricFamily("ringwatch_member_item_bytes", "b", labels=L)
        ttl_f = GaugeMetricFamily("ringwatch_member_ttl_timestamp_seconds", "x", labels=L)
        versions = {}
        for ring, name, desc, version, ttl, nbytes in members:
            lv = [self.table, ring, name]
            hb.add_metric(lv, desc.timestamp)
            age.add_metric(lv, now - desc.timestamp)
            reg.add_metric(lv, desc.registered_timestamp)
            current = STATE_NAMES.get(desc.state, "UNKNOWN")
            for s in KNOWN_STATES:
                state.add_metric([*lv, s], 1 if s == current else 0)
            if current == "UNKNOWN":
                state.add_metric([*lv, "UNKNOWN"], 1)
            info.add_metric([*lv, desc.addr, desc.zone], 1)
            tokens.add_metric(lv, len(desc.tokens))
            own.add_metric(lv, ownership[(ring, name)])
            cas.add_metric(lv, version)
            before = self.versions.get((ring, name))
            changed = before[1] if before and before[0] == version else now
            versions[(ring, name)] = (version, changed)
            cas_change.add_metric(lv, changed)
            size.add_metric(lv, nbytes)
            if ttl is not None:
                ttl_f.add_metric(lv, ttl)
        self.versions = versions
        yield from (hb, age, reg, state, info, tokens, own, cas, cas_change, size)
        if ttl_f.samples:
            yield ttl_f
        R = ["table", "ring"]
        rm = GaugeMetricFamily("ringwatch_ring_members", "m", labels=[*R, "state"])
        stale = GaugeMetricFamily("ringwatch_ring_stale_members", "s", labels=R)
        oldest = GaugeMetricFamily(
            "ringwatch_ring_oldest_heartbeat_timestamp_seconds", "o", labels=R
        )
        rt = GaugeMetricFamily("ringwatch_ring_tokens", "t", labels=R)
        for ring, ms in by_ring.items():
            lv = [self.table, ring]
            for s in KNOWN_STATES:
                rm.add_metric([*lv, s], sum(1 for m in ms if STATE_NAMES.get(m[2].state) == s))
            stale.add_metric(lv, sum(1 for m in ms if now - m[2].timestamp > self.stale_after))
            oldest.add_metric(lv, min(m[2].timestamp for m in ms))
            rt.add_metric(lv, sum(len(m[2].tokens) for m in ms))
        yield from (rm, stale, oldest, rt)


def naive(args: argparse.Namespace) -> None:
    import boto3
    from prometheus_client import CollectorRegistry, generate_latest

    client = boto3.client("dynamodb", endpoint_url=args.endpoint, region_name="us-east-1")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NaiveCollector(client, args.table))
    scrapes = []
    size = 0
    for _ in range(args.scrapes):
        with Timer() as t:
            size = len(generate_latest(registry))
        scrapes.append((t.cpu, t.wall))
    later = scrapes[1:] or scrapes
    _report(
        scrape_cpu=statistics.median(c for c, _ in later),
        scrape_wall=statistics.median(w for _, w in later),
        first_scrape_cpu=scrapes[0][0],
        scrapes=scrapes,
        metrics_bytes=size,
        rss_mb=_rss_mb(),
    )


# -- concurrent clients ---------------------------------------------------------


async def load_async(args: argparse.Namespace) -> None:
    import aiohttp

    latencies: list[float] = []
    received = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(args.requests):
        queue.put_nowait(i)
    headers = {"Accept-Encoding": "gzip" if args.gzip else "identity"}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal received
        while not queue.empty():
            queue.get_nowait()
            started = time.perf_counter()
            async with session.get(args.url, headers=headers, auto_decompress=False) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{args.url}: HTTP {resp.status}")
            received += len(body)
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=args.clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(args.clients)))
        wall = time.perf_counter() - started
    latencies.sort()
    _report(
        wall=wall,
        requests=args.requests,
        bytes_per_request=received // args.requests,
        p50_ms=1000 * latencies[len(latencies) // 2],
        p99_ms=1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("floor", "steady", "naive"):
        p = sub.add_parser(name)
        p.add_argument("--endpoint", required=True)
        p.add_argument("--table", required=True)
    sub.choices["steady"].add_argument("--cycles", type=int, default=3)
    sub.choices["steady"].add_argument("--clients", type=int, default=20)
    sub.choices["steady"].add_argument("--serve-requests", type=int, default=0)
    sub.choices["naive"].add_argument("--scrapes", type=int, default=2)
    p = sub.add_parser("load")
    p.add_argument("--url", required=True)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--requests", type=int, default=40)
    p.add_argument("--gzip", action="store_true")
    args = parser.parse_args()
    if args.command == "floor":
        floor(args)
    elif args.command == "steady":
        asyncio.run(steady_async(args))
    elif args.command == "naive":
        naive(args)
    else:
        asyncio.run(load_async(args))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
