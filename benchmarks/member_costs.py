"""What one member costs a serve cycle, step by step, against what cannot be avoided.

    .venv/bin/python benchmarks/member_costs.py                 # 10,000 members
    .venv/bin/python benchmarks/member_costs.py --members 50000

In one process, the cyclic GC paused as in a scan, every member heartbeated since
the last scan (bench.py's (b)); the least of --repeat runs, in microseconds a
member (CPU time):

  floor           json.loads of the Scan pages: what bench.py's floor (a) does
  page read       ringwatch's read of the same pages (msgspec, typed items)
  library calls   a changed item's base64, snappy and protobuf calls, and nothing
                  else: the part of decoding no Python code around it can remove
  decode          ItemDecoder.decode of a changed item (those calls and their glue)
  build           SnapshotBuilder.build (views, heartbeat tracks, stale judgement)
  render          Renderer.render_parts (the /metrics families)

The fetch (aiobotocore, HTTP) is not here: bench.py's (b) includes it.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cramjam
import msgspec
from google.protobuf.unknown_fields import UnknownFieldSet
from pybase64 import b64decode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ringtable import RingTable, make_members

from ringwatch.cortex.decode import ItemDecoder, read_items_json
from ringwatch.cortex.proto import InstanceDescTokensView
from ringwatch.dynamodb.reader import TableRead
from ringwatch.render.exposition import Renderer
from ringwatch.snapshot.builder import SnapshotBuilder
from ringwatch.snapshot.model import Snapshot

_PAGE_ITEMS = msgspec.json.Decoder(dict[str, msgspec.Raw])


def least(run: Callable[[], float], repeat: int) -> float:
    """The least of `repeat` timings `run` returns (seconds)."""
    return min(run() for _ in range(repeat))


def cpu_of(step: Callable[[], object]) -> float:
    """CPU seconds `step` takes."""
    started = time.process_time()
    step()
    return time.process_time() - started


def items_of(pages: list[bytes]) -> list[object]:
    """A generation's pages read as ringwatch reads them."""
    return [item for page in pages for item in read_items_json(_PAGE_ITEMS.decode(page)["Items"])]


def library_calls(encoded: list[str]) -> None:
    """The calls a changed item's Data needs, and nothing around them."""
    length, decompress = cramjam.snappy.decompress_raw_len, cramjam.snappy.decompress_raw
    parse = InstanceDescTokensView.FromString
    for text in encoded:
        data = b64decode(text, validate=True)
        length(data)
        view = parse(bytes(decompress(data)))
        view.ByteSize()
        len(UnknownFieldSet(view))


def measure(members: int, repeat: int) -> dict[str, float]:
    """Microseconds a member for each step."""
    table = RingTable(make_members(members))
    pages = table.scan_pages
    old, new = items_of(pages[0]), items_of(pages[1])

    def decode_changed() -> float:
        decoder = ItemDecoder()  # the last scan saw `old`: every item of `new` changed
        decoder.start_scan()
        for item in old:
            decoder.decode(item)
        decoder.end_scan()
        decoder.start_scan()
        return cpu_of(lambda: [decoder.decode(item) for item in new])

    builder, renderer = SnapshotBuilder(stale_after=60.0), Renderer()
    snapshots: list[Snapshot] = []
    build_times: list[float] = []
    render_times: list[float] = []
    for scan in range(2 * repeat + 2):
        builder.start_scan()
        decoded = [
            m
            for page in pages[scan % 2]
            for m in builder.decode_page(_PAGE_ITEMS.decode(page)["Items"])
        ]
        read = TableRead("ring", 1_800_000_000.0 + 15 * scan, items=decoded)
        previous = snapshots[-1] if snapshots else None
        started = time.process_time()
        snapshots.append(builder.build([read], previous, read.started_at))
        build_times.append(time.process_time() - started)
        render_times.append(cpu_of(lambda: renderer.render_parts(snapshots[-1].tables)))
        del snapshots[:-1]

    encoded = [item.Data.B for item in new]  # type: ignore[attr-defined]
    seconds = {
        "floor (json.loads)": least(
            lambda: cpu_of(lambda: [json.loads(p) for p in pages[1]]), repeat
        ),
        "page read": least(lambda: cpu_of(lambda: items_of(pages[1])), repeat),
        "library calls": least(lambda: cpu_of(lambda: library_calls(encoded)), repeat),
        "decode": least(decode_changed, repeat),
        "build": min(build_times[2:]),
        "render": min(render_times[2:]),
    }
    return {name: 1e6 * value / members for name, value in seconds.items()}


def cost_lines(us: dict[str, float]) -> list[str]:
    """The figures as printed: each step's microseconds a member, then ringwatch's sum."""
    floor = us["floor (json.loads)"]
    ours = us["page read"] + us["decode"] + us["build"] + us["render"]
    return [
        *(f"  {name:26} {value:8.2f}" for name, value in us.items()),
        f"  {'ringwatch, these steps':26} {ours:8.2f}  ({ours / floor:.2f}x json.loads; "
        "the fetch is not in it)",
        f"  {'beyond the library calls':26} {ours - us['library calls']:8.2f}",
    ]


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="one JSON line (for bench.py)")
    args = parser.parse_args()
    gc.disable()
    costs = measure(args.members, args.repeat)
    if args.json:
        print(json.dumps({"members": args.members, "us_per_member": costs}))
        return
    print(
        f"{args.members:,} members, every one heartbeated since the last scan; "
        "us a member (CPU, least of runs):"
    )
    print("\n".join(cost_lines(costs)))


if __name__ == "__main__":
    main()
