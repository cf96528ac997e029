"""Flags, environment and YAML file -> one validated `Config`.

Each flag is declared once, as a field of `Config` (`flag_field`): its help, parser,
range, default, environment variable and YAML key follow from that declaration, and
`FLAGS` is read off the fields.

Precedence: flag, then environment (`RINGWATCH_` + flag name), then the YAML file
(flat mapping of flag names), then the default. Any bad value raises
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
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

import yaml

from ringwatch.units import (
    cut_for_error,
    format_duration,
    parse_bool,
    parse_duration,
    parse_host_port,
)

__all__ = [
    "FLAGS",
    "FLAGS_BY_NAME",
    "Config",
    "ConfigError",
    "Flag",
    "build_arg_parser",
    "flag_help",
    "load_config",
    "load_yaml_bounded",
    "parse_duration",
]


class ConfigError(Exception):
    """A bad flag, environment variable or config file; the message is one line."""


# A value longer than this is shown cut, with its length, in an error line.
_SHOWN_CHARS = 256


def _shown(text: str) -> str:
    """`text` as an error line shows it: cut past _SHOWN_CHARS, control characters escaped."""
    text = cut_for_error(text, _SHOWN_CHARS)
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


@dataclass(frozen=True)
class _Durations:
    """A parser of durations from `low` to `high`, both included."""

    low: str
    high: str

    @property
    def bounds(self) -> str:
        """The range as --help and error lines write it."""
        return f"{self.low} to {self.high}"

    def __call__(self, text: str) -> float:
        value = parse_duration(text)
        if not parse_duration(self.low) <= value <= parse_duration(self.high):
            raise ValueError(f"must be from {self.bounds}")
        return value


# Whole numbers are read from at most this many digits (Python refuses to convert
# thousands, and no flag needs more).
_MAX_INT_DIGITS = 9


@dataclass(frozen=True)
class _Ints:
    """A parser of whole numbers from `low` to `high`, both included; `why` says why `low`."""

    low: int
    high: int
    why: str = ""

    @property
    def bounds(self) -> str:
        """The range as --help and error lines write it."""
        return f"{self.low} to {self.high}"

    def __call__(self, text: str) -> int:
        stripped = text.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", stripped) or len(stripped) > _MAX_INT_DIGITS:
            raise ValueError(f"not a whole number: {_shown(text)!r}")
        value = int(stripped)
        if value < self.low:
            raise ValueError(f"must be at least {self.low}, got {text!r}{self.why}")
        if value > self.high:
            raise ValueError(f"must be at most {self.high}, got {text!r}")
        return value


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"{_shown(text)!r} is not one of {', '.join(allowed)}")
        return text

    return parse


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


# As DynamoDB names tables, but from 1 character: DynamoDB itself wants 3 or more
# and refuses a shorter name at the first scan (counted and logged, not hidden).
_TABLE_NAME_RE = re.compile(r"[a-zA-Z0-9_.-]{1,255}")


def _table_name(text: str) -> str:
    if not _TABLE_NAME_RE.fullmatch(text):
        raise ValueError(
            "not a DynamoDB table name (at most 255 of a-z, A-Z, 0-9, '_', '.' and '-')"
        )
    return text


# A partition key value: DynamoDB allows 2048 bytes.
_MAX_RING_KEY_BYTES = 2048


def _ring_key(text: str) -> str:
    _non_empty(text)
    if len(text.encode("utf-8", "surrogatepass")) > _MAX_RING_KEY_BYTES:
        raise ValueError(f"longer than DynamoDB's {_MAX_RING_KEY_BYTES} bytes of a key")
    if not text.isprintable():
        raise ValueError("has a control character")
    return text


# PATH_MAX on Linux.
_MAX_PATH = 4096


def _path(text: str) -> str:
    _non_empty(text)
    if len(text) > _MAX_PATH:
        raise ValueError(f"longer than {_MAX_PATH} characters")
    if re.search(r"[\x00-\x1f\x7f]", text):
        raise ValueError("has a control character")
    return text


# A DNS name: dot-separated labels of letters, digits and inner '-', 253 characters in
# all (each label matched one way only: no backtracking blow-up on a long bad name).
_DNS_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_HOSTNAME_RE = re.compile(rf"(?=.{{1,253}}$){_DNS_LABEL}(?:\.{_DNS_LABEL})*\.?")


def _listen_address(text: str) -> str:
    host, _ = parse_host_port(text)
    if re.fullmatch(r"[\d.]+", host) or ":" in host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"not an IP address: {_shown(host)!r}") from None
    elif not _HOSTNAME_RE.fullmatch(host):
        raise ValueError(f"not a host name: {_shown(host)!r}")
    return text


# The paths of ringwatch's other endpoints, which the metrics cannot take.
RESERVED_PATHS = ("/", "/-/healthy", "/-/ready", "/ring", "/ring.json")
# A URL path of plain characters: no query, fragment, escape or route pattern.
_TELEMETRY_PATH_RE = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@/-]{0,255}")


def _telemetry_path(text: str) -> str:
    if not _TELEMETRY_PATH_RE.fullmatch(text):
        raise ValueError(
            "not a URL path: it starts with '/' and has at most 256 of "
            "A-Z a-z 0-9 and ._~!$&'()*+,;=:@/- (no query, no %-escapes)"
        )
    if text in RESERVED_PATHS:
        raise ValueError(f"is one of ringwatch's other endpoints ({', '.join(RESERVED_PATHS)})")
    return text


# What browsers and most servers take in a URL.
_MAX_URL = 2048


def _url(text: str) -> str:
    if len(text) > _MAX_URL:
        raise ValueError(f"not an http(s) URL: longer than {_MAX_URL} characters")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        raise ValueError(f"not an http(s) URL: {text!r} ({exc})") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or re.search(r"[\s\x00-\x1f\x7f]", text)
    ):
        raise ValueError(f"not an http(s) URL: {text!r}")
    return text


# As botocore checks a region name (a DNS label), so a bad one stops start-up.
_REGION_RE = re.compile(r"^(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)$")


def _region(text: str) -> str:
    if not _REGION_RE.match(text):
        raise ValueError(f"not an AWS region name: {_shown(text)!r} (for example us-east-1)")
    return text


# Years 1970 to 9999: what a date can be printed for.
_MAX_UNIX_SECONDS = 253402300799.0


def _unix_seconds(text: str) -> float:
    if len(text) > 64:
        raise ValueError(f"not unix seconds: {_shown(text)!r}")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not unix seconds: {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= _MAX_UNIX_SECONDS:
        raise ValueError(
            f"unix seconds between 0 and {_MAX_UNIX_SECONDS:.0f} (year 9999), got {text!r}"
        )
    return value


@dataclass(frozen=True)
class Flag:
    """One flag of serve/scan: its name, help, parser and default; env var and YAML key follow."""

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
    # The Config attribute holding the value (the field the flag is declared on).
    field: str = ""

    @property
    def env_var(self) -> str:
        """`RINGWATCH_` + the name upper-cased, `.` and `-` turned into `_`."""
        return "RINGWATCH_" + re.sub(r"[.-]", "_", self.name).upper()

    @property
    def option(self) -> str:
        """`--` + the name."""
        return "--" + self.name

    @property
    def empty(self) -> Any:
        """The value when the flag is not given and has no default."""
        return () if self.repeatable else None


def flag_field(
    name: str,
    help: str,
    parse: Callable[[str], Any] = str,
    default: str | None = None,
    **options: Any,
) -> Any:
    """A Config field that is a flag: the one place a flag is declared (its help, parser,
    default, environment variable and YAML key all follow from here)."""
    return field(metadata={"flag": Flag(name, help, parse, default, **options)})


# Timeouts of one request: long enough for a slow round trip, short enough that a
# wedged one is noticed while the scan that waits on it still matters.
_REQUEST_TIMEOUTS = _Durations("100ms", "10m")


@dataclass(frozen=True)
class Config:
    """Every setting of serve or scan, parsed and checked: one field per flag, in --help's
    order. Adding a flag is adding its field here."""

    tables: tuple[str, ...] = flag_field(
        "dynamodb.table",
        "DynamoDB table holding the ring (repeatable).",
        _table_name,
        repeatable=True,
        metavar="TABLE",
    )
    ring_keys: tuple[str, ...] = flag_field(
        "dynamodb.ring-key",
        "Only this RingKey, read with one Query each (repeatable); "
        "default: Scan every ring in the table.",
        _ring_key,
        repeatable=True,
        metavar="RING_KEY",
    )
    region: str = flag_field(
        "dynamodb.region",
        "AWS region; default AWS_REGION, then AWS_DEFAULT_REGION.",
        _region,
        metavar="REGION",
    )
    endpoint_url: str | None = flag_field(
        "dynamodb.endpoint-url",
        "DynamoDB endpoint; default AWS_ENDPOINT_URL_DYNAMODB, then AWS's own.",
        _url,
        metavar="URL",
    )
    consistent_read: bool = flag_field(
        "dynamodb.consistent-read",
        "Strongly consistent reads (doubles the read cost).",
        parse_bool,
        "false",
        boolean=True,
    )
    connect_timeout: float = flag_field(
        "dynamodb.connect-timeout",
        "TCP/TLS connect timeout.",
        _REQUEST_TIMEOUTS,
        "1s",
        metavar="DURATION",
    )
    request_timeout: float = flag_field(
        "dynamodb.request-timeout",
        "Hard deadline on one attempt of one request, whatever the server does.",
        _REQUEST_TIMEOUTS,
        "2s",
        metavar="DURATION",
    )
    max_attempts: int = flag_field(
        "dynamodb.max-attempts",
        "Attempts per request, the first included.",
        _Ints(1, 10),
        "2",
        metavar="N",
    )
    scan_interval: float = flag_field(
        "scan.interval",
        "Time between scan starts; scans never overlap.",
        _Durations("100ms", "1h"),
        "15s",
        metavar="DURATION",
        serve_only=True,
    )
    scan_timeout: float = flag_field(
        "scan.timeout",
        "Hard deadline on a whole scan of one table, all attempts included.",
        _Durations("100ms", "1h"),
        "10s",
        metavar="DURATION",
    )
    stale_after: float = flag_field(
        "ring.stale-after",
        "A member whose heartbeat is older counts as stale; the cap of "
        "the threshold, and the threshold while a member's heartbeat period is unknown.",
        _Durations("1s", "1d"),
        "1m",
        metavar="DURATION",
    )
    stale_periods: int = flag_field(
        "ring.stale-periods",
        "A member is stale when its heartbeat is older than this many "
        "of its own observed heartbeat periods (within the floor and the cap).",
        _Ints(
            2,
            100,
            " (within one period a member beating on time would be stale just before each beat)",
        ),
        "4",
        metavar="N",
    )
    stale_floor: float = flag_field(
        "ring.stale-floor",
        "The stale threshold of a member with a known heartbeat period "
        "is never below this; at most --ring.stale-after.",
        _Durations("1s", "1d"),
        "20s",
        metavar="DURATION",
    )
    snapshot_max_age: float = flag_field(
        "snapshot.max-age",
        "Past this age member and ring series are no longer served; default 3 x --scan.interval.",
        _Durations("100ms", "1d"),
        metavar="DURATION",
        serve_only=True,
    )
    member_states: str = flag_field(
        "metrics.member-states",
        "all: a ringwatch_member_state series per known state; current: only the current state.",
        _choice("all", "current"),
        "all",
        metavar="MODE",
        serve_only=True,
    )
    listen_addresses: tuple[str, ...] = flag_field(
        "web.listen-address",
        "Address to serve HTTP on (repeatable: every one is served).",
        _listen_address,
        ":10960",
        repeatable=True,
        metavar="HOST:PORT",
        serve_only=True,
    )
    web_telemetry_path: str = flag_field(
        "web.telemetry-path",
        "Path under which to serve the metrics.",
        _telemetry_path,
        "/metrics",
        metavar="PATH",
        serve_only=True,
    )
    web_config_file: str | None = flag_field(
        "web.config.file",
        "exporter-toolkit web config (TLS, basic auth).",
        _path,
        metavar="FILE",
        serve_only=True,
    )
    log_level: str = flag_field(
        "log.level",
        "debug, info, warn or error.",
        _choice("debug", "info", "warn", "error"),
        "info",
        metavar="LEVEL",
    )
    log_format: str = flag_field(
        "log.format", "logfmt or json.", _choice("logfmt", "json"), "logfmt", metavar="FORMAT"
    )
    config_file: str | None = flag_field(
        "config.file", "YAML file of flag names without dashes.", _path, metavar="FILE"
    )
    # `ringwatch scan` only.
    at: float | None = flag_field(
        "at",
        "Judge ages as of these unix seconds (for a dump looked at after the fact).",
        _unix_seconds,
        scan_only=True,
        metavar="UNIX_SECONDS",
    )
    stuck_after: float = flag_field(
        "ring.stuck-after",
        "JOINING/PENDING registered longer ago than this is a problem.",
        _Durations("1s", "1y"),
        "10m",
        scan_only=True,
        metavar="DURATION",
    )
    output: str = flag_field(
        "output", "text or json.", _choice("text", "json"), "text", scan_only=True, metavar="FORMAT"
    )
    problems_only: bool = flag_field(
        "problems-only",
        "Show only members with a problem.",
        parse_bool,
        "false",
        boolean=True,
        scan_only=True,
    )
    # Where each flag's value came from: flag, env, file or default.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def listen_address(self) -> str:
        """The first `--web.listen-address`."""
        return self.listen_addresses[0]

    @property
    def listen_host_port(self) -> tuple[str, int]:
        """The first `--web.listen-address` as (host, port)."""
        return parse_host_port(self.listen_address)

    @property
    def listen_host_ports(self) -> list[tuple[str, int]]:
        """Every `--web.listen-address` as (host, port)."""
        return [parse_host_port(address) for address in self.listen_addresses]


FLAGS: tuple[Flag, ...] = tuple(
    replace(f.metadata["flag"], field=f.name) for f in fields(Config) if "flag" in f.metadata
)
FLAGS_BY_NAME: dict[str, Flag] = {flag.name: flag for flag in FLAGS}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(message)


def flag_help(flag: Flag) -> str:
    """A flag's --help text: what it does, its default and its environment variable."""
    notes = [f"default {flag.default}"] if flag.default is not None else []
    bounds = getattr(flag.parse, "bounds", None)
    if bounds:
        notes.append(bounds)
    notes.append(f"env {flag.env_var}")
    return f"{flag.help} [{'; '.join(notes)}]"


def build_arg_parser(prog: str, with_scan_flags: bool) -> argparse.ArgumentParser:
    """The parser of `ringwatch serve`, or with the scan flags of `ringwatch scan`."""
    parser = _Parser(prog=prog, allow_abbrev=False, argument_default=argparse.SUPPRESS)
    parser.add_argument(
        "--version", action="store_true", dest="version", help="print the version and exit"
    )
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


# Bounds of a YAML file ringwatch reads: a config file is a few lines; these only stop
# a file that would take the parser's stack or memory with it.
YAML_MAX_BYTES = 256 * 1024
YAML_MAX_DEPTH = 32
# Plain scalars that YAML reads as numbers: Python refuses to convert one of thousands
# of digits, and no setting needs more than a few.
_YAML_MAX_NUMBER = 64
# libyaml's safe loader where PyYAML has it: 256 KiB in a quarter of a second, not two.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})
_YAML_RESOLVER = yaml.resolver.Resolver()


def _at_line(mark: Any) -> str:
    """` at line N` of a YAML mark, or nothing without one."""
    return f" at line {mark.line + 1}" if mark is not None else ""


def load_yaml_bounded(path: str, what: str) -> Any:
    """The YAML document in `path`, or ConfigError (one line naming `what`=`path`) when it
    cannot be read, is not UTF-8 or YAML, is over YAML_MAX_BYTES, nests deeper than
    YAML_MAX_DEPTH, or has a number of more than 64 characters."""
    where = f"{what}={path}"
    try:
        with open(path, "rb") as handle:
            data = handle.read(YAML_MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it: {exc.strerror}") from None
    except ValueError as exc:  # a path with a NUL byte
        raise ConfigError(f"{where}: cannot read it: {exc}") from None
    if len(data) > YAML_MAX_BYTES:
        raise ConfigError(f"{where}: larger than {YAML_MAX_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 (byte {exc.start})") from None
    try:
        # The event parser is a loop, not a recursion: the depth is known before the
        # (recursive) constructor runs.
        depth = 0
        for event in yaml.parse(text, Loader=_YAML_LOADER):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > YAML_MAX_DEPTH:
                    raise ConfigError(
                        f"{where}: nested deeper than {YAML_MAX_DEPTH} levels"
                        f"{_at_line(event.start_mark)}"
                    )
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            elif (
                isinstance(event, yaml.ScalarEvent)
                and event.implicit[0]  # plain
                and len(event.value) > _YAML_MAX_NUMBER
                and _YAML_RESOLVER.resolve(yaml.ScalarNode, event.value, (True, False))
                in _YAML_NUMBER_TAGS
            ):
                raise ConfigError(
                    f"{where}: a number of {len(event.value)} characters"
                    f"{_at_line(event.start_mark)} (at most "
                    f"{_YAML_MAX_NUMBER}; quote it if it is text)"
                )
        return yaml.load(text, Loader=_YAML_LOADER)  # a safe loader, C or Python
    except yaml.YAMLError as exc:
        line = _at_line(getattr(exc, "problem_mark", None))
        problem = getattr(exc, "problem", None)
        said = f": {_shown(str(problem))}" if problem else ""
        raise ConfigError(f"{where}: not valid YAML{line}{said}") from None
    except (ValueError, OverflowError, RecursionError) as exc:  # a value YAML cannot build
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{where}: a value cannot be read: {_shown(first)}") from None


# More values than this for a repeatable flag is a mistake, not a ring.
MAX_REPEATED = 100


def _read_config_file(path: str, allowed: Mapping[str, Flag]) -> dict[str, list[str]]:
    loaded = load_yaml_bounded(path, "--config.file")
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"--config.file={path}: must be a mapping of flag names to values")
    values: dict[str, list[str]] = {}
    for key, value in loaded.items():
        flag = allowed.get(str(key))
        if flag is None or key == "config.file":
            raise ConfigError(f"--config.file={path}: unknown key {_shown(str(key))!r}")
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


def _from_environment(
    environ: Mapping[str, str], allowed: Mapping[str, Flag]
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


def _from_flags(
    argv: Sequence[str], allowed: Mapping[str, Flag], prog: str, scan_flags: bool
) -> dict[str, list[str]]:
    parsed = vars(build_arg_parser(prog, scan_flags).parse_args(list(argv)))
    parsed.pop("version", None)  # the CLI answers --version before it loads a config
    values: dict[str, list[str]] = {}
    for name, value in parsed.items():
        flag = allowed[name]
        if flag.boolean:
            values[name] = ["true" if value else "false"]
        elif flag.repeatable:
            values[name] = list(value)
        else:
            values[name] = [value]
    return values


def _from_aws_environment(name: str, text: str, parse: Callable[[str], str]) -> str:
    try:
        return parse(text)
    except ValueError as exc:
        raise ConfigError(f"{name}={text}: {exc}") from None


@dataclass(frozen=True)
class _Given:
    """One flag's value as given, before parsing: its texts and where they came from."""

    texts: list[str]
    source: str  # flag, env, file or default
    where: str  # how an error line names it: --scan.interval, RINGWATCH_SCAN_INTERVAL, ...


def _merge(
    argv: Sequence[str],
    environ: Mapping[str, str],
    allowed: Mapping[str, Flag],
    prog: str,
    scan_flags: bool,
) -> dict[str, _Given]:
    """Each flag's texts from the first source that has it: flag, env, file, default."""
    from_flags = _from_flags(argv, allowed, prog, scan_flags)
    from_env = _from_environment(environ, allowed)
    config_file = FLAGS_BY_NAME["config.file"]
    from_file: dict[str, list[str]] = {}
    path = None
    for source, layer in (("flag", from_flags), ("env", from_env)):
        if config_file.name in layer:
            given = _Given(layer[config_file.name], source, _where(config_file, source, None))
            path = _parse(config_file, given)
            from_file = _read_config_file(path, allowed)
            break
    merged: dict[str, _Given] = {}
    for name, flag in allowed.items():
        for source, layer in (("flag", from_flags), ("env", from_env), ("file", from_file)):
            if name in layer:
                merged[name] = _Given(layer[name], source, _where(flag, source, path))
                break
        else:
            if flag.default is not None:
                merged[name] = _Given([flag.default], "default", flag.option)
    return merged


def _where(flag: Flag, source: str, path: str | None) -> str:
    """How an error line names a flag given by `source`."""
    return {
        "flag": flag.option,
        "env": flag.env_var,
        "file": f"{flag.name} in {path}",
        "default": flag.option,
    }[source]


def _parse(flag: Flag, given: _Given) -> Any:
    """A flag's value from its texts: a tuple for a repeatable flag."""
    if len(given.texts) > MAX_REPEATED:
        raise ConfigError(f"{given.where}: more than {MAX_REPEATED} values")
    try:
        parsed = [flag.parse(text) for text in given.texts]
    except ValueError as exc:
        raise ConfigError(f"{given.where}={_shown(','.join(given.texts))}: {exc}") from None
    return tuple(parsed) if flag.repeatable else parsed[0]


def _cross_check(
    values: dict[str, Any], given: Mapping[str, _Given], environ: Mapping[str, str]
) -> None:
    """Checks between flags, AWS's own variables as fallbacks, and defaults that follow
    other flags; `values` (by flag name) is completed in place."""
    tables = values.get("dynamodb.table", ())
    if not tables:
        raise ConfigError(
            "--dynamodb.table is required (or RINGWATCH_DYNAMODB_TABLE, "
            "or dynamodb.table in the config file)"
        )
    if len(set(tables)) != len(tables):
        raise ConfigError(f"--dynamodb.table={','.join(tables)}: a table is named twice")
    ring_keys = values.get("dynamodb.ring-key", ())
    if len(set(ring_keys)) != len(ring_keys):
        raise ConfigError(
            f"--dynamodb.ring-key={','.join(ring_keys)}: a ring key is named "
            "twice (its members would be counted twice)"
        )
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if not values.get("dynamodb.region") and environ.get(name):
            values["dynamodb.region"] = _from_aws_environment(name, environ[name], _region)
    if not values.get("dynamodb.region"):
        raise ConfigError(
            "--dynamodb.region is not set, and neither AWS_REGION nor "
            "AWS_DEFAULT_REGION is in the environment"
        )
    if not values.get("dynamodb.endpoint-url") and environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        values["dynamodb.endpoint-url"] = _from_aws_environment(
            "AWS_ENDPOINT_URL_DYNAMODB", environ["AWS_ENDPOINT_URL_DYNAMODB"], _url
        )
    addresses = values.get("web.listen-address", ())
    if len(set(addresses)) != len(addresses):
        raise ConfigError(f"--web.listen-address={','.join(addresses)}: an address is named twice")
    scan_interval = values["scan.interval"]
    max_age = values.get("snapshot.max-age")
    if max_age is not None and max_age < scan_interval:
        raise ConfigError(
            f"--snapshot.max-age={format_duration(max_age)} is shorter than "
            f"--scan.interval={format_duration(scan_interval)}: every snapshot "
            "would expire before the next scan"
        )
    values["snapshot.max-age"] = 3 * scan_interval if max_age is None else max_age
    stale_after, stale_floor = values["ring.stale-after"], values["ring.stale-floor"]
    if stale_floor > stale_after:
        floor = given["ring.stale-floor"]
        if floor.source != "default":
            raise ConfigError(
                f"{floor.where}={floor.texts[0]}: must not exceed "
                f"--ring.stale-after ({format_duration(stale_after)})"
            )
        values["ring.stale-floor"] = stale_after  # a short --ring.stale-after alone stays valid


def _build(values: Mapping[str, Any], given: Mapping[str, _Given]) -> Config:
    """The Config of every flag's value; a flag without one (a scan flag for serve, or
    one not given that has no default) gets its default or nothing."""

    def value(flag: Flag) -> Any:
        if flag.name in values:
            return values[flag.name]
        if flag.default is not None:
            return _parse(flag, _Given([flag.default], "default", flag.option))
        return flag.empty

    return Config(
        **{flag.field: value(flag) for flag in FLAGS},
        sources={name: g.source for name, g in given.items()},
    )


def load_config(
    argv: Sequence[str],
    environ: Mapping[str, str] | None = None,
    prog: str = "ringwatch serve",
    scan_flags: bool = False,
) -> Config:
    """Parse and validate; raises ConfigError with one line on any bad value.

    Four steps: merge the sources (flag, env, file, default), parse each value,
    cross-check the values together, build the Config."""
    environ = os.environ if environ is None else environ
    allowed = {
        name: flag for name, flag in FLAGS_BY_NAME.items() if scan_flags or not flag.scan_only
    }
    given = _merge(argv, environ, allowed, prog, scan_flags)
    values = {name: _parse(allowed[name], texts) for name, texts in given.items()}
    _cross_check(values, given, environ)
    return _build(values, given)
