"""ringwatch at scale: what a scan cycle, a one-shot scan and a scrape cost.

    .venv/bin/python benchmarks/bench.py                 # N = 1,000, 10,000, 50,000
    .venv/bin/python benchmarks/bench.py --quick         # N = 1,000 (smoke test)
    .venv/bin/python benchmarks/bench.py --sizes 10000 --out /tmp/r.json

For each N it builds a Cortex-format table (128 tokens a member, several
rings), serves its pages from a replay server (pre-rendered DynamoDB JSON, 1 MB
pages) and runs, each in its own process:

  (a)  floor   fetch the pages over HTTP and json.loads them
  (b)  steady  one `serve` scan cycle (fetch, decode, snapshot, render) after a
               first cycle warmed the caches; every member heartbeated between
               cycles. (b0) is the same with nothing changed (frozen ring).
  (b1) scan    `ringwatch scan --output json`, cold start
  (c)  naive   boto3 paginator + upb + prometheus_client collector, per scrape
  (d)  one ring: (a) and (b1) again with every member in one ring (Cortex's
       ingesters are one ring), N = 20,000 by default
  (e)  what a member costs (b), step by step, in microseconds, beside what its
       library calls alone cost (member_costs.py), at N = 10,000

`--serve-only` runs the /metrics part of (b) alone: 50 concurrent scrapers
against /metrics and against a static file of the same bytes (aiohttp's
FileResponse, sendfile), plain and gzip, at N = 750 and 10,000 by default:

    .venv/bin/python benchmarks/bench.py --serve-only

Every CPU figure is incremental: the same program against an empty table is
measured too and subtracted. Every program runs once unmeasured first (the
first run after an install pays byte-compilation), and an incremental figure
that comes out negative is noise, printed as n/a, never as a result. Process
figures come from os.wait4's rusage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import replay  # noqa: E402
from member_costs import cost_lines  # noqa: E402
from ringtable import ONE_RING, RingTable, make_members  # noqa: E402

PY = sys.executable
DRIVERS = str(HERE / "drivers.py")
EMPTY = "ring-empty"
ONE_RING_N = 20_000

TARGETS = [
    # (figure, at N, comparison, limit)
    ("b/a", 10_000, "<=", 3.0),
    ("b1/a", 10_000, "<=", 5.0),
    ("one ring: b1/a", ONE_RING_N, "<=", 5.0),
    ("c/b", 10_000, ">=", 7.0),
    ("growth b 10k->50k", 50_000, "<=", 5.5),
    ("rss serve MB", 10_000, "<=", 150.0),
    ("render / plain f-strings", 10_000, "<=", 2.0),
    ("serve /metrics / static file (cpu per request)", 10_000, "<=", 1.5),
    ("serve /metrics / static file gzip (cpu per request)", 10_000, "<=", 1.5),
]

FIGURES = [
    "a floor cpu s",
    "a floor wall s",
    "a floor process cpu s",
    "b steady cycle cpu s",
    "b steady cycle wall s",
    "b0 unchanged cycle cpu s",
    "b first cycle cpu s",
    "b1 scan cpu s",
    "b1 scan wall s",
    "b1 scan rss MB",
    "c naive scrape cpu s",
    "c naive scrape wall s",
    "c naive rss MB",
    "rss serve MB",
    "metrics bytes",
    "metrics gzip bytes",
    "render cpu s",
    "plain f-strings cpu s",
    "render / plain f-strings",
    "serve /metrics cpu ms/req",
    "serve static cpu ms/req",
    "serve /metrics p50 ms",
    "serve static p50 ms",
    "serve /metrics gzip cpu ms/req",
    "serve static gzip cpu ms/req",
    "serve /metrics / static file (cpu per request)",
    "serve /metrics / static file gzip (cpu per request)",
    "b/a",
    "b1/a",
    "c/b",
]
ONE_RING_FIGURES = [
    "one ring: a floor cpu s",
    "one ring: b1 scan cpu s",
    "one ring: b1 scan rss MB",
    "one ring: b1/a",
]


class Spawner:
    """The small process (spawner.py) that starts every measured program, so
    that a program's peak RSS is its own, not bench.py's (see spawner.py)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [PY, str(HERE / "spawner.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, args: list[str]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(args) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(30)


SPAWNER: Spawner | None = None


def measure(args: list[str], report: bool = True) -> dict[str, Any]:
    """Run one program; its JSON report plus its own CPU, wall and peak RSS."""
    if SPAWNER is None:
        raise RuntimeError("measure() needs the spawner: start it before building tables")
    run = SPAWNER.run(args)
    text = run.pop("stdout")
    stderr = run.pop("stderr_tail")
    result: dict[str, Any] = {**run, "stdout_bytes": len(text)}
    if result["exit"] not in (0, 1):
        raise RuntimeError(f"{args[1:4]} exited {result['exit']}: {stderr}")
    if report:
        result.update(json.loads(text.strip().splitlines()[-1]))
    return result


def best(runs: list[dict[str, Any]], key: str) -> float:
    return min(r[key] for r in runs)


def incremental(raw: dict[str, Any], label: str, key: str) -> float:
    """Best run on the table minus best run on the empty table; NaN when that
    comes out negative (noise larger than the figure: not a result)."""
    value = best(raw[label], key) - best(raw[f"{label}_empty"], key)
    return value if value >= 0 else float("nan")


def ratio(top: float, bottom: float) -> float:
    return top / bottom if bottom > 0 else float("nan")


def warm_up(endpoint: str) -> None:
    """Run every program once against the empty table, unmeasured: the first
    run after an install byte-compiles the modules it imports."""
    for argv in (
        [PY, DRIVERS, "floor", "--endpoint", endpoint],
        [PY, DRIVERS, "steady", "--endpoint", endpoint, "--cycles", "1"],
        [PY, DRIVERS, "naive", "--endpoint", endpoint, "--scrapes", "1"],
    ):
        measure([*argv, "--table", EMPTY])
    measure([*scan_argv(endpoint), EMPTY], report=False)


def scan_argv(endpoint: str) -> list[str]:
    return [
        PY,
        "-m",
        "ringwatch",
        "scan",
        "--output",
        "json",
        "--dynamodb.region",
        "us-east-1",
        "--dynamodb.endpoint-url",
        endpoint,
        "--dynamodb.table",
    ]


def repeat(times: int, args: list[str], report: bool = True) -> list[dict[str, Any]]:
    return [measure(args, report) for _ in range(times)]


def run_size(
    n: int, endpoint: str, tables: dict[str, RingTable], reps: int, serve_requests: int
) -> dict[str, Any]:
    build_started = time.perf_counter()
    table = RingTable(make_members(n, now=int(time.time())))
    name = f"ring-{n}"
    tables[name] = table
    print(
        f"\n== N = {n:,} members: {len(table.scan_pages[0])} Scan pages, "
        f"{table.scan_bytes / 1e6:.1f} MB (built in {time.perf_counter() - build_started:.1f}s)",
        flush=True,
    )
    common = ["--endpoint", endpoint]
    raw: dict[str, Any] = {}
    try:
        for label, argv in {
            "floor": [PY, DRIVERS, "floor", *common],
            "steady": [PY, DRIVERS, "steady", *common, "--serve-requests", str(serve_requests)],
            "unchanged": [PY, DRIVERS, "steady", *common, "--cycles", "2"],
            "naive": [PY, DRIVERS, "naive", *common],
        }.items():
            table_name = f"{name}-frozen" if label == "unchanged" else name
            raw[label] = repeat(reps, [*argv, "--table", table_name])
            empty_argv = [a for a in argv if a not in ("--serve-requests", str(serve_requests))]
            raw[f"{label}_empty"] = repeat(reps, [*empty_argv, "--table", EMPTY])
            print(f"   {label}: done", flush=True)
        # The 1% of members ten minutes old are reported as problems, as for a user.
        scan = scan_argv(endpoint)
        raw["scan"] = repeat(reps, [*scan, name], report=False)
        raw["scan_empty"] = repeat(reps, [*scan, EMPTY], report=False)
        print("   scan: done", flush=True)
    finally:
        del tables[name]
    return {
        "n": n,
        "scan_pages": len(table.scan_pages[0]),
        "scan_page_bytes": table.scan_bytes,
        "figures": figures(raw),
        "raw": raw,
    }


def run_one_ring(n: int, endpoint: str, tables: dict[str, RingTable], reps: int) -> dict[str, Any]:
    """(a) and (b1) with all N members in one ring."""
    table = RingTable(make_members(n, now=int(time.time()), rings=ONE_RING), generations=1)
    name = f"onering-{n}"
    tables[name] = table
    print(f"\n== one ring of N = {n:,} members: {len(table.scan_pages[0])} Scan pages", flush=True)
    raw: dict[str, Any] = {}
    try:
        floor = [PY, DRIVERS, "floor", "--endpoint", endpoint, "--table"]
        raw["floor"] = repeat(reps, [*floor, name])
        raw["floor_empty"] = repeat(reps, [*floor, EMPTY])
        scan = scan_argv(endpoint)
        raw["scan"] = repeat(reps, [*scan, name], report=False)
        raw["scan_empty"] = repeat(reps, [*scan, EMPTY], report=False)
    finally:
        del tables[name]
    a = incremental(raw, "floor", "cpu")
    b1 = incremental(raw, "scan", "process_cpu")
    return {
        "n": n,
        "raw": raw,
        "figures": {
            "one ring: a floor cpu s": a,
            "one ring: b1 scan cpu s": b1,
            "one ring: b1 scan rss MB": best(raw["scan"], "process_rss_mb"),
            "one ring: b1/a": ratio(b1, a),
        },
    }


SERVE_FIGURES = [
    "serve /metrics cpu ms/req",
    "serve static cpu ms/req",
    "serve /metrics / static file (cpu per request)",
    "serve /metrics gzip cpu ms/req",
    "serve static gzip cpu ms/req",
    "serve /metrics / static file gzip (cpu per request)",
    "serve /metrics p50 ms",
    "serve static p50 ms",
    "serve /metrics gzip p50 ms",
    "serve static gzip p50 ms",
    "metrics bytes",
    "metrics gzip bytes",
]


def serve_only(
    sizes: list[int], endpoint: str, tables: dict[str, RingTable], reps: int, clients: int
) -> None:
    """/metrics against a static file of the same bytes, `clients` scrapers at a time."""
    results = []
    for n in sizes:
        name = f"ring-{n}"
        tables[name] = RingTable(make_members(n, now=int(time.time())))
        argv = [
            PY,
            DRIVERS,
            "steady",
            "--endpoint",
            endpoint,
            "--table",
            name,
            "--cycles",
            "2",
            "--clients",
            str(clients),
            "--serve-requests",
            str(4 * clients),
        ]
        try:
            runs = repeat(reps, argv)
        finally:
            del tables[name]
        best_run = min(runs, key=lambda r: r["serving"]["metrics"]["server_cpu_per_request_ms"])
        f = figures({"steady": [best_run]}, serving_only=True)
        results.append({"n": n, "figures": f})
    print(f"\n{clients} concurrent scrapers, {4 * clients} requests each way")
    print("figure".ljust(52) + "".join(f"{'N=' + format(r['n'], ','):>14}" for r in results))
    for key in SERVE_FIGURES:
        print(key.ljust(52) + "".join(f"{_fmt(r['figures'][key]):>14}" for r in results))


def figures(raw: dict[str, Any], serving_only: bool = False) -> dict[str, float]:
    def inc(label: str, key: str) -> float:
        return incremental(raw, label, key)

    steady = min(raw["steady"], key=lambda r: r["cycle_cpu"])
    serving = steady["serving"]
    f: dict[str, float] = {
        "metrics bytes": steady["metrics_bytes"],
        "metrics gzip bytes": steady["metrics_gzip_bytes"],
    }
    if not serving_only:
        f |= {
            # In-process (fetch + json.loads) minus the same on the empty table; the
            # process totals are kept too but carry ~10 ms of start-up noise.
            "a floor cpu s": inc("floor", "cpu"),
            "a floor wall s": inc("floor", "wall"),
            "a floor process cpu s": inc("floor", "process_cpu"),
            "b steady cycle cpu s": inc("steady", "cycle_cpu"),
            "b steady cycle wall s": inc("steady", "cycle_wall"),
            "b0 unchanged cycle cpu s": inc("unchanged", "cycle_cpu"),
            "b first cycle cpu s": inc("steady", "first_cycle_cpu"),
            "b1 scan cpu s": inc("scan", "process_cpu"),
            "b1 scan wall s": inc("scan", "process_wall"),
            "b1 scan rss MB": best(raw["scan"], "process_rss_mb"),
            "c naive scrape cpu s": inc("naive", "scrape_cpu"),
            "c naive scrape wall s": inc("naive", "scrape_wall"),
            "c naive rss MB": best(raw["naive"], "rss_mb"),
            "rss serve MB": best(raw["steady"], "rss_scan_mb"),
            "render cpu s": best(raw["steady"], "render_cpu"),
            "plain f-strings cpu s": best(raw["steady"], "plain_render_cpu"),
            "render identical to plain": float(all(r["render_identical"] for r in raw["steady"])),
        }
        f["render / plain f-strings"] = ratio(f["render cpu s"], f["plain f-strings cpu s"])
    for key, name in (("metrics", "/metrics"), ("static", "static")):
        for suffix in ("", "_gzip"):
            s = serving.get(f"{key}{suffix}", {})
            f[f"serve {name}{suffix.replace('_', ' ')} cpu ms/req"] = s.get(
                "server_cpu_per_request_ms", float("nan")
            )
            f[f"serve {name}{suffix.replace('_', ' ')} p50 ms"] = s.get("p50_ms", float("nan"))
            f[f"serve {name}{suffix.replace('_', ' ')} wall s"] = s.get("wall", float("nan"))
    f["serve /metrics / static file (cpu per request)"] = ratio(
        f["serve /metrics cpu ms/req"], f["serve static cpu ms/req"]
    )
    f["serve /metrics / static file gzip (cpu per request)"] = ratio(
        f["serve /metrics gzip cpu ms/req"], f["serve static gzip cpu ms/req"]
    )
    if serving_only:
        return f
    a = f["a floor cpu s"]
    f["b/a"] = ratio(f["b steady cycle cpu s"], a)
    f["b1/a"] = ratio(f["b1 scan cpu s"], a)
    f["c/b"] = ratio(f["c naive scrape cpu s"], f["b steady cycle cpu s"])
    return f


def member_costs(members: int, repeat: int) -> dict[str, Any]:
    """(e): member_costs.py's figures (in its own process: its GC pause stays its own)."""
    proc = subprocess.run(
        [
            PY,
            str(HERE / "member_costs.py"),
            "--members",
            str(members),
            "--repeat",
            str(repeat),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in (
        "aiobotocore",
        "botocore",
        "boto3",
        "aiohttp",
        "orjson",
        "msgspec",
        "protobuf",
        "cramjam",
        "prometheus_client",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    from ringwatch.cortex.proto import protobuf_backend

    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "protobuf_backend": protobuf_backend(),
        "packages": versions,
    }


def _fmt(value: float) -> str:
    if value != value:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"


def growth(results: list[dict[str, Any]], frm: int, to: int) -> dict[str, float]:
    by_n = {r["n"]: r["figures"] for r in results}
    if frm not in by_n or to not in by_n:
        return {}
    out = {}
    for key, name in (
        ("a floor cpu s", "a"),
        ("b steady cycle cpu s", "b"),
        ("b1 scan cpu s", "b1"),
        ("c naive scrape cpu s", "c"),
    ):
        out[f"growth {name} {frm // 1000}k->{to // 1000}k"] = ratio(by_n[to][key], by_n[frm][key])
    return out


def check_targets(
    results: list[dict[str, Any]], grow: dict[str, float], one_ring: dict[str, Any] | None = None
) -> list[str]:
    """One line per target: the figure, the limit, the figure / limit, the verdict."""
    by_n = {r["n"]: r["figures"] for r in results}
    lines = []
    for figure, n, op, limit in TARGETS:
        if figure.startswith("growth"):
            value = grow.get("growth b 10k->50k", float("nan"))
        elif figure.startswith("one ring"):
            value = one_ring["figures"][figure] if one_ring else float("nan")
            n = one_ring["n"] if one_ring else n
        else:
            value = by_n.get(n, {}).get(figure, float("nan"))
        if value != value:
            verdict = f"not measured (needs N={n:,}, or lost in noise)"
        else:
            met = value <= limit if op == "<=" else value >= limit
            verdict = "met" if met else "MISSED"
        lines.append(
            f"  {figure:48} {op} {limit:<5} at {n / 1000:g}k: {_fmt(value):>8}"
            f"  ({_fmt(value / limit)} of the limit)  {verdict}"
        )
    return lines


def markdown(
    results: list[dict[str, Any]],
    info: dict[str, Any],
    grow: dict[str, float],
    targets: list[str],
    one_ring: dict[str, Any],
    costs: dict[str, Any],
) -> str:
    sizes = [r["n"] for r in results]
    head = "| figure | " + " | ".join(f"N={n:,}" for n in sizes) + " |"
    rows = [head, "|---|" + "---:|" * len(sizes)]
    for name in FIGURES:
        rows.append(f"| {name} | " + " | ".join(_fmt(r["figures"][name]) for r in results) + " |")
    text = [
        "# ringwatch benchmark results",
        "",
        f"Machine: {info['cpus']} CPUs, {info['cpu_model']}, Python {info['python']}, "
        f"protobuf backend {info['protobuf_backend']}, {info['platform']}.",
        "",
        *rows,
        "",
        *(f"- {k}: {_fmt(v)}" for k, v in grow.items()),
        "",
        f"One ring of {one_ring['n']:,} members:",
        "",
        *(f"- {k}: {_fmt(v)}" for k, v in one_ring["figures"].items()),
        "",
        f"What a member costs (b), {costs['members']:,} members, us (CPU):",
        "",
        "```",
        *cost_lines(costs["us_per_member"]),
        "```",
        "",
        "Targets:",
        "```",
        *targets,
        "```",
        "",
    ]
    return "\n".join(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 1,000 only, one repetition")
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument(
        "--one-ring",
        type=int,
        default=ONE_RING_N,
        help=f"members of the one-ring case (default {ONE_RING_N:,}; 1,000 with --quick)",
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each program; the best is kept"
    )
    parser.add_argument(
        "--serve-only",
        action="store_true",
        help="only /metrics against a static file (sizes default 750,10000)",
    )
    parser.add_argument(
        "--clients", type=int, default=50, help="concurrent scrapers of --serve-only"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results JSON (default benchmarks/results.json; none in --quick)",
    )
    args = parser.parse_args(argv)
    if args.serve_only and args.sizes == parser.get_default("sizes"):
        args.sizes = "750,10000"
    sizes = [1000] if args.quick else [int(s) for s in args.sizes.split(",")]
    reps = 1 if args.quick else args.repeat
    out = args.out or (None if args.quick else HERE / "results.json")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.pop("AWS_PROFILE", None)

    global SPAWNER
    SPAWNER = Spawner()  # first, while this process is small
    info = machine()
    print(
        f"machine: {info['cpus']} CPUs, {info['cpu_model']}, Python {info['python']}, "
        f"protobuf {info['protobuf_backend']}",
        flush=True,
    )
    tables: dict[str, RingTable] = {EMPTY: RingTable([])}
    endpoint, _, stop = replay.start(tables)
    results = []
    if args.serve_only:
        try:
            warm_up(endpoint)
            serve_only(sizes, endpoint, tables, reps, args.clients)
        finally:
            stop()
            SPAWNER.close()
        return 0
    try:
        warm_up(endpoint)
        for n in sizes:
            serve_requests = 40 if n <= 10_000 else 20
            results.append(run_size(n, endpoint, tables, reps, serve_requests))
        one_ring = run_one_ring(1000 if args.quick else args.one_ring, endpoint, tables, reps)
        costs = member_costs(1000 if args.quick else 10_000, 2 if args.quick else 5)
    finally:
        stop()
        SPAWNER.close()
    grow = growth(results, 10_000, 50_000)
    targets = check_targets(results, grow, one_ring)

    print("\n" + "figure".ljust(48) + "".join(f"{'N=' + format(r['n'], ','):>14}" for r in results))
    for name in FIGURES:
        print(name.ljust(48) + "".join(f"{_fmt(r['figures'][name]):>14}" for r in results))
    for key, value in grow.items():
        print(f"{key}: {_fmt(value)}")
    print(f"\none ring of {one_ring['n']:,} members:")
    for key, value in one_ring["figures"].items():
        print(f"{key.ljust(48)}{_fmt(value):>14}")
    print(f"\nwhat a member costs (b), {costs['members']:,} members, us (CPU):")
    print("\n".join(cost_lines(costs["us_per_member"])))
    print("\ntargets: (figure, limit, figure / limit, verdict)")
    print("\n".join(targets))
    if not all(r["figures"]["render identical to plain"] for r in results):
        print("WARNING: the renderer's output differs from the plain f-string rendering")
    if out is not None:
        document = {
            "machine": info,
            "generated_at": time.time(),
            "sizes": sizes,
            "repeat": reps,
            "results": results,
            "growth": grow,
            "one_ring": one_ring,
            "member_costs": costs,
            "targets": targets,
        }
        out.write_text(json.dumps(document, indent=1) + "\n")
        md = out.with_name("RESULTS.md") if out.name == "results.json" else out.with_suffix(".md")
        md.write_text(markdown(results, info, grow, targets, one_ring, costs))
        print(f"\nwrote {out} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
