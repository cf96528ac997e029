"""`ringwatch demo`: an embedded DynamoDB-compatible server, a simulated ring
with one member that freezes, and the exporter watching it. No AWS account,
no network: everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import signal
import sys
from pathlib import Path

from ringwatch.config import ConfigError, load_config
from ringwatch.logs import setup_logging
from ringwatch.units import parse_duration

TABLE = "cortex-ring"
# Short, so that the frozen member turns stale within the demo's first minute.
STALE_AFTER = "20s"


def ringwatch_executable() -> str:
    """This ringwatch, as a command that works when pasted: the venv's script by its full
    path (the venv need not be activated), else this Python with -m ringwatch."""
    script = Path(sys.executable).parent / "ringwatch"
    if script.exists():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m ringwatch"


def scan_command(endpoint_url: str) -> str:
    """The one-scan command the banner prints: same table, endpoint and stale threshold."""
    return (
        f"AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
        f"{ringwatch_executable()} scan \\\n"
        f"                   --dynamodb.table {TABLE} --dynamodb.region us-east-1 \\\n"
        f"                   --dynamodb.endpoint-url {endpoint_url} "
        f"--ring.stale-after {STALE_AFTER}"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ringwatch demo",
        description="Run ringwatch against a simulated Cortex ring on "
        "an embedded DynamoDB-compatible server (moto).",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen",
        default="127.0.0.1:10960",
        help="where the exporter listens (default 127.0.0.1:10960)",
    )
    parser.add_argument("--members", type=int, default=12, help="simulated ingesters (12)")
    parser.add_argument(
        "--heartbeat.period", dest="period", default="5s", help="simulated heartbeat period (5s)"
    )
    parser.add_argument(
        "--duration",
        default=None,
        help="stop by itself after this long (default: run until Ctrl-C)",
    )
    return parser


async def _run(args: argparse.Namespace) -> int:
    from ringwatch.dev.localdynamo import LocalDynamo, create_ring_table
    from ringwatch.dev.simulator import RingSimulator, SimConfig, demo_scenario_path, load_scenario
    from ringwatch.serve.main import serve

    period = parse_duration(args.period)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    simulated = {f"ingester-{i}" for i in range(args.members)}
    scenario = [a for a in load_scenario(demo_scenario_path()) if a.member in simulated]
    with LocalDynamo() as dynamo:
        create_ring_table(dynamo.endpoint_url, TABLE)
        simulator = RingSimulator(
            SimConfig(
                table=TABLE,
                endpoint_url=dynamo.endpoint_url,
                members=args.members,
                zones=3,
                heartbeat_period=period,
                scenario=scenario,
                control_listen_address="127.0.0.1:0",
                seed=1,
            )
        )
        with simulator:
            config = load_config(
                [
                    "--dynamodb.table",
                    TABLE,
                    "--dynamodb.region",
                    "us-east-1",
                    "--dynamodb.endpoint-url",
                    dynamo.endpoint_url,
                    "--scan.interval",
                    "5s",
                    "--ring.stale-after",
                    STALE_AFTER,
                    "--web.listen-address",
                    args.listen,
                ],
                environ={},
            )

            def announce(host: str, port: int) -> None:
                base = f"http://{host}:{port}"
                print(
                    f"""
ringwatch demo: a simulated Cortex ring of {args.members} ingesters in 3 zones, heartbeating
every {args.period} into table {TABLE} on an embedded DynamoDB-compatible server.
ingester-4 freezes at 0:45 (stale after {STALE_AFTER}) and thaws at 4:00;
ingester-7 restarts at 5:00.

  metrics        {base}/metrics
  ring page      {base}/ring
  ring as JSON   {base}/ring.json
  DynamoDB       {dynamo.endpoint_url}
  simulator      {simulator.control_url}/members   (POST /members/ingester-2/freeze ...)

  one scan:      {scan_command(dynamo.endpoint_url)}

Ctrl-C stops everything.
""",
                    flush=True,
                )

            async def stop_after(seconds: float) -> None:
                await asyncio.sleep(seconds)
                stop.set()

            timer = None
            if args.duration:
                timer = asyncio.create_task(stop_after(parse_duration(args.duration)))
            code = await serve(config, stop=stop, on_listening=announce)
            if timer:
                timer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await timer
    print("ringwatch demo: stopped.", flush=True)
    return code


def main(argv: list[str]) -> int:
    """`ringwatch demo`: local DynamoDB, a simulated ring and the exporter, until Ctrl-C."""
    try:
        args = _parser().parse_args(argv)
        parse_duration(args.period)
        if args.duration:
            parse_duration(args.duration)
    except ValueError as exc:
        print(f"ringwatch: error: {exc}", file=sys.stderr)
        return 2
    try:
        import moto  # noqa: F401
    except ImportError:
        print(
            "ringwatch: error: the demo needs moto: pip install 'ringwatch[demo]'", file=sys.stderr
        )
        return 2
    setup_logging("info", "logfmt")
    try:
        return asyncio.run(_run(args))
    except ConfigError as exc:
        print(f"ringwatch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
