"""Every value is range-checked as it is read: out of range, too long or too deep is one line
naming the flag, environment variable or file key, and exit 2 within 2 s, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.cli import assert_one_line_exit_2, run_ringwatch

from ringwatch.config import FLAGS_BY_NAME

# Start-up refuses a bad value this long after the process starts, at most (measured
# 0.1-0.4 s here), plus a margin for a loaded 2-core machine.
START_UP_BOUND = 2.0
MARGIN = 1.0
# Nothing is ever reached on this endpoint: a refusal must come before any I/O.
REQUIRED = [
    "--dynamodb.table",
    "ring",
    "--dynamodb.region",
    "eu-west-1",
    "--dynamodb.endpoint-url",
    "http://127.0.0.1:9",
]
HUNDREDS_OF_DIGITS = "9" * 400
THOUSANDS_OF_DIGITS = "9" * 5000

BAD_VALUES = [
    ("scan.interval", HUNDREDS_OF_DIGITS + "s"),
    ("scan.interval", "50ms"),
    ("scan.interval", "2h"),
    ("scan.timeout", HUNDREDS_OF_DIGITS + "s"),
    ("scan.timeout", "0s"),
    ("ring.stale-after", HUNDREDS_OF_DIGITS + "s"),
    ("ring.stale-after", "2d"),
    ("ring.stale-floor", "500ms"),
    ("ring.stale-periods", "101"),
    ("ring.stale-periods", THOUSANDS_OF_DIGITS),
    ("dynamodb.request-timeout", HUNDREDS_OF_DIGITS + "s"),
    ("dynamodb.request-timeout", "11m"),
    ("dynamodb.connect-timeout", "10ms"),
    ("dynamodb.max-attempts", "11"),
    ("dynamodb.max-attempts", THOUSANDS_OF_DIGITS),
    ("snapshot.max-age", "2d"),
    ("dynamodb.table", "t" * 256),
    ("dynamodb.table", "no spaces"),
    ("dynamodb.ring-key", "k" * 2049),
    ("dynamodb.region", "r" * 64),
    ("dynamodb.endpoint-url", "http://" + "a" * 3000),
    ("web.listen-address", ":" + THOUSANDS_OF_DIGITS),
    ("web.listen-address", "h" * 300 + ":10960"),
    ("web.listen-address", "no_such!host:10960"),
    ("web.listen-address", "a" * 252 + "!:10960"),
    ("web.config.file", "f" * 5000),
    ("log.level", "x" * 10000),
    ("dynamodb.consistent-read", "maybe"),
    ("web.telemetry-path", "/ring"),
    ("web.telemetry-path", "/" + "m" * 300),
]


def _named_value(value: str) -> str:
    """What of a value its error line shows at least: the start (a long one is cut)."""
    return value[:40]


def _required_but(name: str) -> list[str]:
    """REQUIRED without the flag the test sets itself."""
    pairs = zip(REQUIRED[::2], REQUIRED[1::2], strict=True)
    return [arg for option, value in pairs if option != f"--{name}" for arg in (option, value)]


def _check(result, named: str) -> None:
    print(f"{named[:60]}: exit {result.returncode} in {result.seconds:.2f}s")
    assert_one_line_exit_2(result, named)
    assert len(result.stderr) < 1000, "the value is shown cut, not whole"
    assert result.seconds < START_UP_BOUND + MARGIN


@pytest.mark.parametrize(
    ("name", "value"), BAD_VALUES, ids=[f"{n}={v[:12]}" for n, v in BAD_VALUES]
)
def test_a_bad_flag_is_one_line_and_exit_2(name: str, value: str) -> None:
    flag = FLAGS_BY_NAME[name]
    # argparse names a boolean flag given a value without the value.
    named = flag.option if flag.boolean else f"{flag.option}={_named_value(value)}"
    _check(run_ringwatch("serve", *_required_but(name), f"{flag.option}={value}"), named)


@pytest.mark.parametrize(
    ("name", "value"), BAD_VALUES, ids=[f"{n}={v[:12]}" for n, v in BAD_VALUES]
)
def test_a_bad_environment_variable_is_one_line_and_exit_2(name: str, value: str) -> None:
    flag = FLAGS_BY_NAME[name]
    _check(
        run_ringwatch("serve", *_required_but(name), env={flag.env_var: value}),
        f"{flag.env_var}={_named_value(value)}",
    )


@pytest.mark.parametrize(
    ("name", "value"), BAD_VALUES, ids=[f"{n}={v[:12]}" for n, v in BAD_VALUES]
)
def test_a_bad_config_file_key_is_one_line_and_exit_2(
    tmp_path: Path, name: str, value: str
) -> None:
    path = tmp_path / "ringwatch.yaml"
    path.write_text(yaml.safe_dump({name: value}, width=100_000))
    if name in ("dynamodb.max-attempts", "ring.stale-periods") and value.isdigit():
        # YAML reads it as a number: refused by the loader before Python converts it.
        path.write_text(f"{name}: {value}\n")
    named = (
        f"--config.file={path}"
        if len(value) > 64 and value.isdigit()
        else f"{name} in {path}={_named_value(value)}"
    )
    _check(run_ringwatch("serve", *_required_but(name), "--config.file", str(path)), named)


@pytest.mark.parametrize(
    ("case", "text", "says"),
    [
        (
            "5000-digit integer",
            "dynamodb.max-attempts: " + THOUSANDS_OF_DIGITS + "\n",
            "a number of 5000 characters at line 1",
        ),
        ("5000-digit float", "scan.interval: 1" + "0" * 5000 + ".5\n", "a number of"),
        (
            "200,000 digits then a letter",
            "scan.interval: " + "9" * 200_000 + "z\n",
            "scan.interval in",
        ),
        # Refused by ringwatch past 32 levels, or by libyaml past 1000 on the way there.
        ("100,000 nested [", "dynamodb.table: " + "[" * 100_000 + "\n", "nest"),
        ("50,000 nested {", "x: " + "{a: " * 50_000 + "\n", "nest"),
        ("33 nested [", "dynamodb.table: " + "[" * 33 + "]" * 33 + "\n", "nested deeper than 32"),
        (
            "33 nested blocks",
            "".join(f"{' ' * i}k{i}:\n" for i in range(33)) + " " * 33 + "x\n",
            "nested deeper than 32",
        ),
        (
            "256 KiB, read in time",
            "dynamodb.ring-key: [" + ", ".join(["abc"] * 52_000) + "]\n",
            "more than 100 values",
        ),
        ("300 KiB of comments", "# filler\n" * 33_000, "larger than 256 KiB"),
        ("a NUL in a file path", 'web.config.file: "a\\0b"\n', "has a control character"),
        ("a bad date", "scan.interval: 2001-13-45\n", "a value cannot be read"),
    ],
)
def test_a_config_file_that_is_too_deep_or_too_big_is_one_line_and_exit_2(
    tmp_path: Path, case: str, text: str, says: str
) -> None:
    path = tmp_path / "ringwatch.yaml"
    path.write_text(text)
    result = run_ringwatch("serve", *REQUIRED, "--config.file", str(path), timeout=10)
    _check(result, says)
    assert str(path) in result.stderr


def test_scan_refuses_a_too_long_at_and_stuck_after() -> None:
    for args, named in (
        (["--at", THOUSANDS_OF_DIGITS], "--at="),
        (["--ring.stuck-after", HUNDREDS_OF_DIGITS + "s"], "--ring.stuck-after="),
    ):
        _check(run_ringwatch("scan", *REQUIRED, *args), named)


def test_the_range_of_every_bounded_flag_is_in_its_help() -> None:
    result = run_ringwatch("serve", "--help", env={"COLUMNS": "300"})
    assert result.returncode == 0
    for flag in FLAGS_BY_NAME.values():
        bounds = getattr(flag.parse, "bounds", None)
        if bounds and not flag.scan_only:
            entry = result.stdout.split(f"\n  {flag.option} ", 1)[1].split("\n  --", 1)[0]
            assert bounds in entry, (flag.name, entry)
