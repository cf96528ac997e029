"""Where a steady-state scan cycle spends its time (pyinstrument).

.venv/bin/python benchmarks/replay.py --sizes 10000 &   # prints the endpoint
.venv/bin/python benchmarks/profile_cycle.py --endpoint URL --table ring-10000
"""

from __future__ import annotations

import argparse
import asyncio
import os
from contextlib import AsyncExitStack

from pyinstrument import Profiler

from ringwatch.config import load_config
from ringwatch.serve.scanloop import ScanLoop


async def run(args: argparse.Namespace) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "bench")
    config = load_config(
        [
            "--dynamodb.table",
            args.table,
            "--dynamodb.endpoint-url",
            args.endpoint,
            "--dynamodb.region",
            "us-east-1",
        ],
        environ={},
    )
    exporter = ScanLoop(config)
    async with AsyncExitStack() as stack:
        await exporter.open(stack)
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        if args.first:
            profiler.start()
        await exporter.scan_once()
        if not args.first:
            profiler.start()
            for _ in range(args.cycles):
                await exporter.scan_once()
        profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--first", action="store_true", help="profile the cold first cycle")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
