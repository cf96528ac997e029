"""The one duration, host:port and boolean parser and writer that flags, logs, reports,
/ring and the simulator share."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringwatch.units import format_duration, parse_bool, parse_duration, parse_host_port


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("500ms", 0.5),
        ("15s", 15),
        ("2m", 120),
        ("1h30m", 5400),
        ("1d", 86400),
        ("1w", 604800),
        ("1y", 365 * 86400),
        ("1m30s250ms", 90.25),
        (" 15s ", 15),
        (15, 15),
        (2.5, 2.5),
        (0, 0),
    ],
)
def test_durations_are_read_the_prometheus_way_and_yaml_numbers_as_seconds(
    text: str | float, seconds: float
) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad",
    ["", "1.5s", "15", "s", "-1s", "1s1h", "9" * 400 + "s", "1" * 33, -1, math.inf, math.nan, True],
)
def test_what_is_not_a_duration_is_a_value_error(bad: str | float) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.25, "250ms"),
        (1.2345, "1.234s"),
        (15, "15s"),
        (46.3, "46.3s"),
        (60, "1m"),
        (125, "2m5s"),
        (3600, "1h"),
        (5400, "1h30m"),
        (86400 + 4 * 3600, "1d4h"),
        (-2.5, "-2.5s"),
        (59.9999, "1m"),
        (math.inf, "infs"),
    ],
)
def test_durations_are_written_with_units_and_no_zero_units(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_an_age_for_a_person_keeps_a_tenth_and_two_units() -> None:
    assert format_duration(46.34, decimals=1, parts=2) == "46.3s"
    assert format_duration(185.4, decimals=1, parts=2) == "3m5.4s"
    assert format_duration(2 * 3600 + 10 * 60 + 5, decimals=1, parts=2) == "2h10m"
    assert format_duration(-0.04, decimals=1, parts=2) == "0s"


@given(st.integers(min_value=0, max_value=10 * 365 * 86400))
def test_whole_seconds_written_read_back_the_same(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(min_value=1, max_value=999))
def test_milliseconds_written_read_back_the_same(ms: int) -> None:
    assert parse_duration(format_duration(ms / 1000)) == ms / 1000


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_any_duration_can_be_written(seconds: float) -> None:
    text = format_duration(seconds)
    assert text and text[-1] in "smhd" and "e" not in text


@pytest.mark.parametrize(
    ("text", "host_port"),
    [
        (":10960", ("0.0.0.0", 10960)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:80", ("::1", 80)),
        ("localhost:65535", ("localhost", 65535)),
    ],
)
def test_host_port_is_read(text: str, host_port: tuple[str, int]) -> None:
    assert parse_host_port(text) == host_port


@pytest.mark.parametrize(
    "bad", ["nowhere", ":65536", ":", "h:-1", "h:1e3", ":" + "9" * 5000, "h:\u0661"]
)
def test_what_is_not_host_port_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="not host:port"):
        parse_host_port(bad)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("1", True),
        ("Yes", True),
        ("on", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("off", False),
        ("", False),
    ],
)
def test_booleans_are_read(text: str, value: bool) -> None:
    assert parse_bool(text) is value


def test_what_is_not_a_boolean_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        parse_bool("maybe")
