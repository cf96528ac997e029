"""`ringwatch simulate`: write a simulated Cortex ring into a DynamoDB table.

Members are written in exactly Cortex's item format (RingKey, InstanceKey,
Data = raw snappy of `InstanceDesc`, version, optional ttl), each write a
compare-and-swap `TransactWriteItems` guarded by
`attribute_not_exists(version) OR version = :v`, as Cortex's DynamoDB KV does.
A member registers as PENDING without tokens (version 1), turns ACTIVE with
its tokens, then heartbeats once per `--heartbeat.period` (+1 version each).
Members are `<prefix>0` .. `<prefix>N-1`, zones `zone-a`, `zone-b`, ... round robin.

Actions (from `--scenario.file` or the control endpoint):
  freeze / thaw        stop / resume writing (the item keeps its version and timestamp)
  leave [duration]     LEAVING, heartbeating as LEAVING for `duration` (default 30s), then
                       the item is deleted
  kill                 stop writing for good, item left behind: a ghost
  restart [duration]   leave (LEAVING for `duration`, default 0s), delete, register again:
                       PENDING -> ACTIVE, new tokens, version from 1, new registered_timestamp
  join-stuck [duration] as restart, but register as JOINING with tokens and stay JOINING
  add [zone, tokens, join_stuck]   a new member (`member` is its InstanceKey)

A frozen member acts on leave/restart once thawed (as a SIGSTOPped process would).

Scenario file (YAML), times relative to the simulator's start:
  - {at: 45s, action: freeze, member: ingester-3}
  - {at: 4m, action: thaw, member: ingester-3}
  - {at: 5s, action: leave, member: ingester-1, duration: 3s}
  - {at: 1m, action: add, member: ingester-12, ring: collectors/ring, zone: zone-a}
`ring:` is needed only when the member name is in several rings.

Control endpoint (`--control.listen-address 127.0.0.1:0`; loopback only; the
address is printed on stdout as `control endpoint: http://127.0.0.1:PORT`):
  GET  /members                    JSON list: ring, member, state (item state or ABSENT),
                                   phase, zone, addr, tokens, version, registered_timestamp,
                                   last_heartbeat, frozen, killed, writes_ok, writes_failed,
                                   cas_conflicts, last_error
  GET  /members/{member}?ring=R    one member
  POST /members/{member}/{action}  parameters as query (`?duration=3s&ring=collectors/ring`)
                                   or a JSON object body; answers the member's new state,
                                   404 unknown member, 400 bad action/parameter, 409 not
                                   applicable (e.g. leave of a killed member)

Failed writes (server down, condition failed) are logged and retried at the
next heartbeat; SIGINT/SIGTERM stop it with exit 0 (items are left as they are).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from ringwatch.dev.simulator import RingSimulator, SimConfig, load_scenario, parse_duration
from ringwatch.dev.simulator.control import parse_listen_address
from ringwatch.logs import setup_logging

DEFAULT_RING_KEY = "collectors/ring"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ringwatch simulate",
        description="Write a simulated Cortex ring (Cortex's item format and CAS writes) "
        "into a DynamoDB table.",
    )
    p.add_argument(
        "--dynamodb.table",
        dest="table",
        required=True,
        metavar="TABLE",
        help="table to write the ring into",
    )
    p.add_argument(
        "--dynamodb.endpoint-url",
        dest="endpoint_url",
        metavar="URL",
        default=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"),
        help="DynamoDB endpoint [default AWS_ENDPOINT_URL_DYNAMODB, then AWS's own]",
    )
    p.add_argument(
        "--dynamodb.region",
        dest="region",
        metavar="REGION",
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        help="AWS region [default AWS_REGION, AWS_DEFAULT_REGION, then us-east-1]",
    )
    p.add_argument(
        "--ring.key",
        dest="ring_keys",
        action="append",
        metavar="RING_KEY",
        help=f"ring (RingKey) to simulate, repeatable [default {DEFAULT_RING_KEY}]",
    )
    p.add_argument(
        "--members", type=int, default=12, metavar="N", help="members per ring [default 12]"
    )
    p.add_argument(
        "--tokens", type=int, default=128, metavar="N", help="tokens per member [default 128]"
    )
    p.add_argument(
        "--heartbeat.period",
        dest="heartbeat_period",
        default="5s",
        metavar="DURATION",
        help="time between a member's heartbeats [default 5s]",
    )
    p.add_argument(
        "--zones",
        type=int,
        default=3,
        metavar="N",
        help="zones, members spread round robin; 0 = no zone [default 3]",
    )
    p.add_argument(
        "--member.prefix",
        dest="member_prefix",
        default="ingester-",
        metavar="PREFIX",
        help="member names are PREFIX0 .. PREFIX<N-1> [default ingester-]",
    )
    p.add_argument(
        "--ttl",
        default=None,
        metavar="DURATION",
        help="write a ttl attribute = now + this duration [default: none]",
    )
    p.add_argument(
        "--create-table",
        dest="create_table",
        action="store_true",
        help="create the table (RingKey/InstanceKey keys) if it does not exist",
    )
    p.add_argument(
        "--scenario.file",
        dest="scenario_file",
        default=None,
        metavar="FILE",
        help="YAML list of timed actions (freeze, thaw, leave, kill, restart, ...)",
    )
    p.add_argument(
        "--control.listen-address",
        dest="control",
        default="",
        metavar="HOST:PORT",
        help="host:port on loopback (port 0 = any); empty = no control endpoint",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="N",
        help="seed for deterministic tokens [default: random]",
    )
    p.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=["debug", "info", "warn", "error"],
        help="debug, info, warn or error [default info]",
    )
    p.add_argument(
        "--log.format",
        dest="log_format",
        default="logfmt",
        choices=["logfmt", "json"],
        help="logfmt or json, as ringwatch serve [default logfmt]",
    )
    return p


def _duration(flag: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError:
        raise SystemExit(_usage_error(f"bad value for --{flag}: {value!r}")) from None


def _usage_error(message: str) -> int:
    print(f"ringwatch simulate: {message}", file=sys.stderr)
    return 2


def build_config(args: argparse.Namespace) -> SimConfig:
    """The simulator's config from parsed flags; ValueError naming a bad one."""
    period = _duration("heartbeat.period", args.heartbeat_period)
    scenario = []
    if args.scenario_file:
        try:
            scenario = load_scenario(args.scenario_file)
        except (OSError, ValueError) as err:
            raise SystemExit(_usage_error(f"--scenario.file {args.scenario_file}: {err}")) from None
    if args.control:
        try:
            parse_listen_address(args.control)
        except ValueError as err:
            raise SystemExit(_usage_error(f"--control.listen-address: {err}")) from None
    return SimConfig(
        table=args.table,
        endpoint_url=args.endpoint_url or None,
        region=args.region,
        ring_keys=tuple(args.ring_keys or [DEFAULT_RING_KEY]),
        members=args.members,
        tokens=args.tokens,
        heartbeat_period=period or 0.0,
        zones=args.zones,
        member_prefix=args.member_prefix,
        ttl=_duration("ttl", args.ttl),
        create_table=args.create_table,
        seed=args.seed,
        scenario=scenario,
        control_listen_address=args.control or None,
    )


def main(argv: list[str]) -> int:
    """`ringwatch simulate`: run until SIGINT/SIGTERM; the exit status."""
    try:
        args = _parser().parse_args(argv)
        config = build_config(args)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    setup_logging(args.log_level, args.log_format)  # the same lines as ringwatch serve
    if config.endpoint_url:
        from ringwatch.dev.localdynamo import ensure_dummy_credentials

        ensure_dummy_credentials()  # a local endpoint accepts any key; real ones are kept
    try:
        sim = RingSimulator(config)
    except ValueError as err:
        return _usage_error(str(err))

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            sim.start()
        except OSError as err:  # the control address is taken
            sim.stop()
            return _usage_error(f"--control.listen-address {config.control_listen_address}: {err}")
        if sim.control_url:
            print(f"control endpoint: {sim.control_url}", flush=True)
        logging.getLogger("ringwatch.simulator").info(
            "simulating %d member(s) in %s, table %s, heartbeat every %gs",
            config.members,
            ", ".join(config.ring_keys),
            config.table,
            config.heartbeat_period,
        )
        while not stop.wait(1.0):
            pass
        sim.stop()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
