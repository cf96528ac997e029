"""Flags, environment and YAML file -> one validated `Config`.

Precedence: flag, then environment (`RINGWATCH_` + flag name), then the YAML
file (flat mapping of flag names), then the default. Any bad value raises
`ConfigError` with one line naming the flag and the value; the CLI prints it
and exits 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml


class ConfigError(Exception):
    """A bad flag, environment variable or config file; the message is one line."""


_DURATION_RE = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def parse_duration(text: str) -> float:
    """A Prometheus duration (`500ms`, `15s`, `1h30m`) in seconds."""
    if text == "0":
        return 0.0
    match = _DURATION_RE.match(text)
    if not text or not match:
        raise ValueError(f"not a duration: {text!r} (write it like 500ms, 15s or 2m)")
    return sum(int(g) * unit for g, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if g)


def format_duration(seconds: float) -> str:
    if (seconds and seconds < 1) or seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    seconds = int(seconds)
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def _positive_duration(text: str) -> float:
    value = parse_duration(text)
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise ValueError(f"must be at least 1, got {text!r}")
    return value


def _stale_periods(text: str) -> int:
    value = _positive_int(text)
    if value < 2:
        raise ValueError(f"must be at least 2, got {text!r} (within one period a member "
                         "beating on time would be stale just before each beat)")
    return value


def parse_bool(text: str) -> bool:
    """`true`/`false` (also 1/0, yes/no, on/off); ValueError otherwise."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r} (use true or false)")


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return text

    return parse


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def parse_listen_address(text: str) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"not host:port: {text!r} (for example :10960 or 127.0.0.1:10960)")
    host = host.strip("[]")
    return (host or "0.0.0.0", int(port_text))


def _listen_address(text: str) -> str:
    host, _ = parse_listen_address(text)
    if re.fullmatch(r"[\d.]+", host) or ":" in host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"not an IP address: {host!r}") from None
    return text


def _url(text: str) -> str:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        raise ValueError(f"not an http(s) URL: {text!r} ({exc})") from None
    if (parts.scheme not in ("http", "https") or not parts.hostname
            or re.search(r"[\s\x00-\x1f\x7f]", text)):
        raise ValueError(f"not an http(s) URL: {text!r}")
    return text


# As botocore checks a region name (a DNS label), so a bad one stops start-up.
_REGION_RE = re.compile(r"^(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)$")


def _region(text: str) -> str:
    if not _REGION_RE.match(text):
        raise ValueError(f"not an AWS region name: {text!r} (for example us-east-1)")
    return text


# Years 1970 to 9999: what a date can be printed for.
_MAX_UNIX_SECONDS = 253402300799.0


def _unix_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not unix seconds: {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= _MAX_UNIX_SECONDS:
        raise ValueError(f"unix seconds between 0 and {_MAX_UNIX_SECONDS:.0f} "
                         f"(year 9999), got {text!r}")
    return value


@dataclass(frozen=True)
class Flag:
    name: str
    help: str
    parse: Callable[[str], Any] = str
    default: str | None = None
    repeatable: bool = False
    boolean: bool = False
    scan_only: bool = False
    # The placeholder --help shows for the value (DURATION, URL, TABLE, ...).
    metavar: str = "VALUE"
    # Accepted by `ringwatch scan` (a config file shared with serve) but left out of its --help:
    # it changes nothing for one scan.
    serve_only: bool = False

    @property
    def env_var(self) -> str:
        return "RINGWATCH_" + re.sub(r"[.-]", "_", self.name).upper()

    @property
    def option(self) -> str:
        return "--" + self.name


FLAGS: tuple[Flag, ...] = (
    Flag("dynamodb.table", "DynamoDB table holding the ring (repeatable).", _non_empty,
         repeatable=True, metavar="TABLE"),
    Flag("dynamodb.ring-key", "Only this RingKey, read with one Query each (repeatable); "
         "default: Scan every ring in the table.", _non_empty, repeatable=True,
         metavar="RING_KEY"),
    Flag("dynamodb.region", "AWS region; default AWS_REGION, then AWS_DEFAULT_REGION.",
         _region, metavar="REGION"),
    Flag("dynamodb.endpoint-url", "DynamoDB endpoint; default AWS_ENDPOINT_URL_DYNAMODB, "
         "then AWS's own.", _url, metavar="URL"),
    Flag("dynamodb.consistent-read", "Strongly consistent reads (doubles the read cost).",
         parse_bool, "false", boolean=True),
    Flag("dynamodb.connect-timeout", "TCP/TLS connect timeout.", _positive_duration, "1s",
         metavar="DURATION"),
    Flag("dynamodb.request-timeout", "Hard deadline on one attempt of one request, "
         "whatever the server does.", _positive_duration, "2s", metavar="DURATION"),
    Flag("dynamodb.max-attempts", "Attempts per request, the first included.",
         _positive_int, "2", metavar="N"),
    Flag("scan.interval", "Time between scan starts; scans never overlap.",
         _positive_duration, "15s", metavar="DURATION", serve_only=True),
    Flag("scan.timeout", "Hard deadline on a whole scan of one table, all attempts included.",
         _positive_duration, "10s", metavar="DURATION"),
    Flag("ring.stale-after", "A member whose heartbeat is older counts as stale; the cap "
         "of the threshold, and the threshold while a member's heartbeat period is unknown.",
         _positive_duration, "1m", metavar="DURATION"),
    Flag("ring.stale-periods", "A member is stale when its heartbeat is older than this many "
         "of its own observed heartbeat periods (within the floor and the cap); at least 2.",
         _stale_periods, "4", metavar="N"),
    Flag("ring.stale-floor", "The stale threshold of a member with a known heartbeat period "
         "is never below this; at most --ring.stale-after.", _positive_duration, "20s",
         metavar="DURATION"),
    Flag("snapshot.max-age", "Past this age member and ring series are no longer served; "
         "default 3 x --scan.interval.", _positive_duration,
         metavar="DURATION", serve_only=True),
    Flag("metrics.member-states", "all: a ringwatch_member_state series per known state; "
         "current: only the current state.", _choice("all", "current"), "all",
         metavar="MODE", serve_only=True),
    Flag("web.listen-address", "Address to serve /metrics on.", _listen_address, ":10960",
         metavar="HOST:PORT", serve_only=True),
    Flag("web.config.file", "exporter-toolkit web config (TLS, basic auth).", _non_empty,
         metavar="FILE", serve_only=True),
    Flag("log.level", "debug, info, warn or error.", _choice("debug", "info", "warn", "error"),
         "info", metavar="LEVEL"),
    Flag("log.format", "logfmt or json.", _choice("logfmt", "json"), "logfmt",
         metavar="FORMAT"),
    Flag("config.file", "YAML file of flag names without dashes.", _non_empty,
         metavar="FILE"),
    # `ringwatch scan` only.
    Flag("at", "Judge ages as of these unix seconds (for a dump looked at after the fact).",
         _unix_seconds, scan_only=True, metavar="UNIX_SECONDS"),
    Flag("ring.stuck-after", "JOINING/PENDING registered longer ago than this is a problem.",
         _positive_duration, "10m", scan_only=True, metavar="DURATION"),
    Flag("output", "text or json.", _choice("text", "json"), "text", scan_only=True,
         metavar="FORMAT"),
    Flag("problems-only", "Show only members with a problem.", parse_bool, "false",
         boolean=True, scan_only=True),
)
FLAGS_BY_NAME: dict[str, Flag] = {flag.name: flag for flag in FLAGS}


@dataclass(frozen=True)
class Config:
    tables: tuple[str, ...]
    ring_keys: tuple[str, ...]
    region: str
    endpoint_url: str | None
    consistent_read: bool
    connect_timeout: float
    request_timeout: float
    max_attempts: int
    scan_interval: float
    scan_timeout: float
    stale_after: float
    snapshot_max_age: float
    member_states: str
    listen_address: str
    web_config_file: str | None
    log_level: str
    log_format: str
    config_file: str | None
    at: float | None = None
    stuck_after: float = 600.0
    output: str = "text"
    problems_only: bool = False
    stale_periods: int = 4
    stale_floor: float = 20.0
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def listen_host_port(self) -> tuple[str, int]:
        return parse_listen_address(self.listen_address)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(message)


def flag_help(flag: Flag) -> str:
    """A flag's --help text: what it does, its default and its environment variable."""
    notes = [f"default {flag.default}"] if flag.default is not None else []
    notes.append(f"env {flag.env_var}")
    return f"{flag.help} [{'; '.join(notes)}]"


def build_arg_parser(prog: str, with_scan_flags: bool) -> argparse.ArgumentParser:
    """The parser of `ringwatch serve`, or with the scan flags of `ringwatch scan`."""
    parser = _Parser(prog=prog, allow_abbrev=False, argument_default=argparse.SUPPRESS)
    parser.add_argument("--version", action="store_true", dest="version",
                        help="print the version and exit")
    for flag in FLAGS:
        if flag.scan_only and not with_scan_flags:
            continue
        shown = not (with_scan_flags and flag.serve_only)
        help_text = flag_help(flag).replace("%", "%%") if shown else argparse.SUPPRESS
        kwargs: dict[str, Any] = {"dest": flag.name, "help": help_text}
        if flag.boolean:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif flag.repeatable:
            kwargs["action"] = "append"
            kwargs["metavar"] = flag.metavar
        else:
            kwargs["metavar"] = flag.metavar
        names = [flag.option]
        if flag.name == "output":
            names.append("-o")
        parser.add_argument(*names, **kwargs)
    return parser


def _read_config_file(path: str, allowed: Mapping[str, Flag]) -> dict[str, list[str]]:
    try:
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"--config.file={path}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--config.file={path}: not UTF-8 (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ConfigError(f"--config.file={path}: not valid YAML{line}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"--config.file={path}: must be a mapping of flag names to values")
    values: dict[str, list[str]] = {}
    for key, value in loaded.items():
        flag = allowed.get(str(key))
        if flag is None or key == "config.file":
            raise ConfigError(f"--config.file={path}: unknown key {key!r}")
        items = value if isinstance(value, list) else [value]
        if len(items) != 1 and not flag.repeatable:
            raise ConfigError(f"--config.file={path}: {key} takes one value, got a list")
        texts = []
        for item in items:
            if isinstance(item, bool):
                texts.append("true" if item else "false")
            elif isinstance(item, (str, int, float)):
                texts.append(str(item))
            else:
                raise ConfigError(f"--config.file={path}: {key} has a value of the wrong type")
        values[flag.name] = texts
    return values


def _from_environment(environ: Mapping[str, str], allowed: Mapping[str, Flag]
                      ) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for flag in allowed.values():
        raw = environ.get(flag.env_var)
        if raw is None:
            continue
        if flag.repeatable:
            values[flag.name] = [part.strip() for part in raw.split(",") if part.strip()]
        else:
            values[flag.name] = [raw]
    return values


def _from_aws_environment(name: str, text: str, parse: Callable[[str], str]) -> str:
    try:
        return parse(text)
    except ValueError as exc:
        raise ConfigError(f"{name}={text}: {exc}") from None


def load_config(argv: Sequence[str], environ: Mapping[str, str] | None = None,
                prog: str = "ringwatch serve", scan_flags: bool = False) -> Config:
    """Parse and validate; raises ConfigError with one line on any bad value."""
    environ = os.environ if environ is None else environ
    allowed = {name: flag for name, flag in FLAGS_BY_NAME.items()
               if scan_flags or not flag.scan_only}
    parsed = vars(build_arg_parser(prog, scan_flags).parse_args(list(argv)))
    parsed.pop("version", None)  # the CLI answers --version before it loads a config

    from_flags: dict[str, list[str]] = {}
    for name, value in parsed.items():
        flag = allowed[name]
        if flag.boolean:
            from_flags[name] = ["true" if value else "false"]
        elif flag.repeatable:
            from_flags[name] = list(value)
        else:
            from_flags[name] = [value]
    from_env = _from_environment(environ, allowed)

    config_path = (from_flags.get("config.file") or from_env.get("config.file") or [None])[0]
    from_file = _read_config_file(config_path, allowed) if config_path else {}

    raw: dict[str, list[str]] = {}
    sources: dict[str, str] = {}
    for name, flag in allowed.items():
        for source, layer in (("flag", from_flags), ("env", from_env), ("file", from_file)):
            if name in layer:
                raw[name], sources[name] = layer[name], source
                break
        else:
            if flag.default is not None:
                raw[name], sources[name] = [flag.default], "default"

    values: dict[str, Any] = {}
    wheres: dict[str, str] = {}
    for name, texts in raw.items():
        flag = allowed[name]
        where = wheres[name] = {"flag": flag.option, "env": flag.env_var,
                                "file": f"{name} in {config_path}",
                                "default": flag.option}[sources[name]]
        try:
            parsed_values = [flag.parse(text) for text in texts]
        except ValueError as exc:
            raise ConfigError(f"{where}={','.join(texts)}: {exc}") from None
        values[name] = tuple(parsed_values) if flag.repeatable else parsed_values[0]

    tables = values.get("dynamodb.table", ())
    if not tables:
        raise ConfigError("--dynamodb.table is required (or RINGWATCH_DYNAMODB_TABLE, "
                          "or dynamodb.table in the config file)")
    if len(set(tables)) != len(tables):
        raise ConfigError(f"--dynamodb.table={','.join(tables)}: a table is named twice")
    ring_keys = values.get("dynamodb.ring-key", ())
    if len(set(ring_keys)) != len(ring_keys):
        raise ConfigError(f"--dynamodb.ring-key={','.join(ring_keys)}: a ring key is named "
                          "twice (its members would be counted twice)")
    region = values.get("dynamodb.region")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if not region and environ.get(name):
            region = _from_aws_environment(name, environ[name], _region)
    if not region:
        raise ConfigError("--dynamodb.region is not set, and neither AWS_REGION nor "
                          "AWS_DEFAULT_REGION is in the environment")
    endpoint_url = values.get("dynamodb.endpoint-url")
    if not endpoint_url and environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        endpoint_url = _from_aws_environment("AWS_ENDPOINT_URL_DYNAMODB",
                                             environ["AWS_ENDPOINT_URL_DYNAMODB"], _url)
    scan_interval = values["scan.interval"]
    max_age = values.get("snapshot.max-age")
    if max_age is not None and max_age < scan_interval:
        raise ConfigError(f"--snapshot.max-age={format_duration(max_age)} is shorter than "
                          f"--scan.interval={format_duration(scan_interval)}: every snapshot "
                          "would expire before the next scan")
    stale_after, stale_floor = values["ring.stale-after"], values["ring.stale-floor"]
    if stale_floor > stale_after:
        if sources["ring.stale-floor"] != "default":
            raise ConfigError(
                f"{wheres['ring.stale-floor']}={raw['ring.stale-floor'][0]}: must not exceed "
                f"--ring.stale-after ({format_duration(stale_after)})")
        stale_floor = stale_after  # a short --ring.stale-after alone stays valid
    return Config(
        tables=tables,
        ring_keys=ring_keys,
        region=region,
        endpoint_url=endpoint_url or None,
        consistent_read=values["dynamodb.consistent-read"],
        connect_timeout=values["dynamodb.connect-timeout"],
        request_timeout=values["dynamodb.request-timeout"],
        max_attempts=values["dynamodb.max-attempts"],
        scan_interval=scan_interval,
        scan_timeout=values["scan.timeout"],
        stale_after=stale_after,
        snapshot_max_age=3 * scan_interval if max_age is None else max_age,
        member_states=values["metrics.member-states"],
        listen_address=values["web.listen-address"],
        web_config_file=values.get("web.config.file"),
        log_level=values["log.level"],
        log_format=values["log.format"],
        config_file=config_path,
        at=values.get("at"),
        stuck_after=values.get("ring.stuck-after", 600.0),
        output=values.get("output", "text"),
        problems_only=values.get("problems-only", False),
        stale_periods=values["ring.stale-periods"],
        stale_floor=stale_floor,
        sources=sources,
    )
