"""Flags, environment and config file: precedence, defaults, and one clear line on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import assert_one_line_exit_2, run_ringwatch

from ringwatch.config import FLAGS, ConfigError, load_config
from ringwatch.units import parse_duration

BASE = ["--dynamodb.table", "t", "--dynamodb.region", "eu-west-1"]


def test_defaults_are_the_spec_defaults() -> None:
    config = load_config(BASE, environ={})
    assert config.tables == ("t",)
    assert config.ring_keys == ()
    assert config.consistent_read is False
    assert (config.connect_timeout, config.request_timeout, config.max_attempts) == (1, 2, 2)
    assert (config.scan_interval, config.scan_timeout) == (15, 10)
    assert config.stale_after == 60
    assert config.snapshot_max_age == 45  # 3 x scan interval
    assert config.member_states == "all"
    assert config.listen_address == ":10960"
    assert (config.log_level, config.log_format) == ("info", "logfmt")
    assert config.endpoint_url is None


def test_stale_periods_and_floor_default_to_4_and_20s_and_come_from_every_layer(
    tmp_path: Path,
) -> None:
    config = load_config(BASE, environ={})
    assert (config.stale_periods, config.stale_floor, config.stale_after) == (4, 20, 60)
    config_file = tmp_path / "ringwatch.yaml"
    config_file.write_text("ring.stale-periods: 3\nring.stale-floor: 30s\n")
    from_file = load_config([*BASE, "--config.file", str(config_file)], environ={})
    assert (from_file.stale_periods, from_file.stale_floor) == (3, 30)
    from_env = load_config(
        BASE, environ={"RINGWATCH_RING_STALE_PERIODS": "5", "RINGWATCH_RING_STALE_FLOOR": "10s"}
    )
    assert (from_env.stale_periods, from_env.stale_floor) == (5, 10)
    flags = load_config(
        [*BASE, "--ring.stale-periods", "6", "--ring.stale-floor", "1m"], environ={}
    )
    assert (flags.stale_periods, flags.stale_floor) == (6, 60)  # floor == cap is fine


def test_a_short_stale_after_alone_stays_valid_and_brings_the_default_floor_down() -> None:
    config = load_config([*BASE, "--ring.stale-after", "5s"], environ={})
    assert (config.stale_after, config.stale_floor) == (5, 5)


def test_snapshot_max_age_follows_the_scan_interval() -> None:
    assert load_config([*BASE, "--scan.interval", "1m"], environ={}).snapshot_max_age == 180


def test_flag_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    config_file = tmp_path / "ringwatch.yaml"
    config_file.write_text(
        "dynamodb.table: [from-file-a, from-file-b]\nscan.interval: 20s\n"
        "scan.timeout: 7s\nring.stale-after: 2m\n"
        "dynamodb.consistent-read: true\n"
    )
    env = {
        "RINGWATCH_SCAN_INTERVAL": "30s",
        "RINGWATCH_SCAN_TIMEOUT": "8s",
        "RINGWATCH_CONFIG_FILE": str(config_file),
        "AWS_REGION": "ap-south-1",
    }
    config = load_config(["--scan.interval", "40s"], environ=env)
    assert config.scan_interval == 40  # flag
    assert config.scan_timeout == 8  # environment
    assert config.stale_after == 120  # file
    assert config.tables == ("from-file-a", "from-file-b")  # file, a list
    assert config.consistent_read is True
    assert config.connect_timeout == 1  # default
    assert config.region == "ap-south-1"
    assert config.sources["scan.interval"] == "flag"
    assert config.sources["scan.timeout"] == "env"


def test_repeatable_flags_from_environment_are_comma_separated() -> None:
    config = load_config(
        [],
        environ={
            "RINGWATCH_DYNAMODB_TABLE": "a, b",
            "RINGWATCH_DYNAMODB_RING_KEY": "collectors/ring",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
    )
    assert config.tables == ("a", "b")
    assert config.ring_keys == ("collectors/ring",)


def test_region_falls_back_to_aws_region_then_aws_default_region() -> None:
    table = ["--dynamodb.table", "t"]
    assert load_config(table, environ={"AWS_REGION": "a", "AWS_DEFAULT_REGION": "b"}).region == "a"
    assert load_config(table, environ={"AWS_DEFAULT_REGION": "b"}).region == "b"
    with pytest.raises(ConfigError, match=r"--dynamodb\.region"):
        load_config(table, environ={})


def test_endpoint_falls_back_to_the_aws_dynamodb_endpoint_variable() -> None:
    env = {"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000"}
    assert load_config(BASE, environ=env).endpoint_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["--scan.interval", "15"], {}, "--scan.interval=15"),
        (["--scan.timeout", "soon"], {}, "--scan.timeout=soon"),
        (["--dynamodb.max-attempts", "0"], {}, "--dynamodb.max-attempts=0"),
        (["--metrics.member-states", "some"], {}, "--metrics.member-states=some"),
        (["--log.format", "xml"], {}, "--log.format=xml"),
        (["--web.listen-address", "nowhere"], {}, "--web.listen-address=nowhere"),
        ([], {"RINGWATCH_SCAN_INTERVAL": "fast"}, "RINGWATCH_SCAN_INTERVAL=fast"),
        (["--no-such-flag"], {}, "--no-such-flag"),
        (["--ring.stale-periods", "0"], {}, "--ring.stale-periods=0"),
        (["--ring.stale-periods", "1"], {}, "--ring.stale-periods=1: must be at least 2"),
        (["--ring.stale-periods", "2.5"], {}, "--ring.stale-periods=2.5"),
        (["--ring.stale-floor", "soon"], {}, "--ring.stale-floor=soon"),
        (["--ring.stale-floor", "2m"], {}, "--ring.stale-floor=2m: must not exceed"),
        (
            ["--ring.stale-after", "10s"],
            {"RINGWATCH_RING_STALE_FLOOR": "15s"},
            "RINGWATCH_RING_STALE_FLOOR=15s: must not exceed --ring.stale-after (10s)",
        ),
    ],
)
def test_a_bad_value_names_the_flag_and_the_value(argv: list[str], env: dict, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config([*BASE, *argv], environ=env)
    message = str(caught.value)
    assert named in message
    assert "\n" not in message


def test_bad_config_files_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match=r"--config\.file=.*missing\.yaml.*cannot read"):
        load_config([*BASE, "--config.file", str(missing)], environ={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("scan.interval: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config([*BASE, "--config.file", str(broken)], environ={})
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("scan.intervall: 15s\n")
    with pytest.raises(ConfigError, match=r"unknown key .scan\.intervall."):
        load_config([*BASE, "--config.file", str(unknown)], environ={})
    bad_value = tmp_path / "bad.yaml"
    bad_value.write_text("scan.interval: often\n")
    with pytest.raises(ConfigError, match=r"scan\.interval in .*bad\.yaml=often"):
        load_config([*BASE, "--config.file", str(bad_value)], environ={})


def test_durations_are_written_the_prometheus_way() -> None:
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2m") == 120
    for bad in ("", "1.5s", "15", "s", "-1s"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_every_flag_has_an_environment_variable_spelled_as_spec_says() -> None:
    names = {flag.name: flag.env_var for flag in FLAGS}
    assert names["dynamodb.table"] == "RINGWATCH_DYNAMODB_TABLE"
    assert names["dynamodb.ring-key"] == "RINGWATCH_DYNAMODB_RING_KEY"
    assert names["web.config.file"] == "RINGWATCH_WEB_CONFIG_FILE"


_run_cli = run_ringwatch


def test_cli_exits_2_with_one_line_for_a_bad_flag() -> None:
    result = _run_cli("serve", *BASE, "--scan.interval", "often")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "--scan.interval=often" in lines[0]


def test_cli_exits_2_without_a_table() -> None:
    result = _run_cli("scan", "--dynamodb.region", "us-east-1")
    assert result.returncode == 2
    assert "--dynamodb.table" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_refuses_the_pure_python_protobuf_backend() -> None:
    result = _run_cli("serve", *BASE, env={"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"})
    assert result.returncode == 2
    assert "pure-Python backend" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


_one_line_exit_2 = assert_one_line_exit_2


NO_ENDPOINT = ["--dynamodb.endpoint-url", "http://127.0.0.1:9"]


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--dynamodb.region", "us east 1"], {}, "--dynamodb.region=us east 1"),
        (["--dynamodb.endpoint-url", "http://[::1"], {}, "--dynamodb.endpoint-url=http://[::1"),
        (["--dynamodb.endpoint-url", "http://127.0.0.1:99999"], {}, "--dynamodb.endpoint-url"),
        ([], {"AWS_ENDPOINT_URL_DYNAMODB": "garbage here"}, "AWS_ENDPOINT_URL_DYNAMODB=garbage"),
        ([], {"AWS_ENDPOINT_URL_DYNAMODB": "http://[::1"}, "AWS_ENDPOINT_URL_DYNAMODB"),
        (
            [*NO_ENDPOINT, "--web.listen-address", "256.1.1.1:10960"],
            {},
            "--web.listen-address=256.1.1.1:10960",
        ),
        (
            [*NO_ENDPOINT, "--web.listen-address", "ringwatch-no-such-host.invalid:0"],
            {},
            "--web.listen-address=ringwatch-no-such-host.invalid:0",
        ),
        (
            [*NO_ENDPOINT, "--web.listen-address", "192.0.2.1:0"],
            {},  # TEST-NET-1: not ours
            "--web.listen-address=192.0.2.1:0",
        ),
        (
            [*NO_ENDPOINT, "--scan.interval", "1m", "--snapshot.max-age", "30s"],
            {},
            "--snapshot.max-age=30s",
        ),
        (
            [*NO_ENDPOINT, "--dynamodb.ring-key", "a", "--dynamodb.ring-key", "a"],
            {},
            "--dynamodb.ring-key=a,a",
        ),
        (NO_ENDPOINT, {"RINGWATCH_DYNAMODB_RING_KEY": "a,b,a"}, "--dynamodb.ring-key=a,b,a"),
    ],
)
def test_a_bad_start_up_is_one_line_and_exit_2_never_a_traceback(
    args: list[str], env: dict[str, str], named: str
) -> None:
    result = _run_cli(
        "serve",
        "--dynamodb.table",
        "t",
        "--dynamodb.region",
        "eu-west-1",
        *args,
        env={
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_ENDPOINT_URL_DYNAMODB": "",
            **env,
        },
    )
    _one_line_exit_2(result, named)


def test_a_listen_address_in_use_is_one_line_and_exit_2() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = _run_cli("serve", *BASE, *NO_ENDPOINT, "--web.listen-address", address)
    _one_line_exit_2(result, f"--web.listen-address={address}")
    assert "in use" in result.stderr


@pytest.mark.parametrize("at", ["nan", "inf", "-inf", "1e20", "-5"])
def test_scan_at_must_be_a_time_a_date_can_be_printed_for(at: str) -> None:
    result = _run_cli("scan", *BASE, *NO_ENDPOINT, f"--at={at}")
    _one_line_exit_2(result, f"--at={at}")


def test_duplicate_ring_keys_in_the_config_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "ringwatch.yaml"
    path.write_text("dynamodb.ring-key: [collectors/ring, collectors/ring]\n")
    with pytest.raises(ConfigError, match="ring key is named twice"):
        load_config([*BASE, "--config.file", str(path)], environ={})


@pytest.mark.parametrize("flag", ["--config.file", "--web.config.file"])
def test_a_config_file_that_is_not_utf8_is_one_line_and_exit_2(tmp_path: Path, flag: str) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("# r\xe9glages\n".encode("latin-1"))
    result = _run_cli("serve", *BASE, *NO_ENDPOINT, flag, str(path))
    _one_line_exit_2(result, f"{flag}={path}")
    assert "UTF-8" in result.stderr


def test_simulate_without_the_demo_extra_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['boto3'] = None\n"
        "from ringwatch.cli import main\n"
        "sys.exit(main(['simulate', '--dynamodb.table', 't']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    _one_line_exit_2(result, "pip install 'ringwatch[demo]'")


def test_every_subcommand_in_the_help_exists() -> None:
    from ringwatch.cli import SUBCOMMANDS, USAGE

    listed = USAGE.split("[", 1)[1].split("]", 1)[0].split("|")
    assert tuple(listed) == SUBCOMMANDS
    for command in SUBCOMMANDS:
        result = _run_cli(command, "--help")
        assert result.returncode == 0, (command, result.stderr[-500:])
    _one_line_exit_2(_run_cli("bench"), "unknown subcommand 'bench'")


def test_every_config_field_but_sources_is_a_flag_and_every_flag_a_field() -> None:
    import dataclasses

    from ringwatch.config import Config

    fields = [f.name for f in dataclasses.fields(Config)]
    assert fields == [flag.field for flag in FLAGS] + ["sources"]
    assert len({flag.env_var for flag in FLAGS}) == len(FLAGS)


@pytest.mark.parametrize("flag", [f for f in FLAGS if f.default is not None], ids=lambda f: f.name)
def test_each_flag_reaches_its_field_from_the_environment_and_the_default(flag) -> None:
    scan = flag.scan_only
    expected = flag.parse(flag.default)
    expected = (expected,) if flag.repeatable else expected
    from_default = load_config(BASE, environ={}, scan_flags=scan)
    from_env = load_config(BASE, environ={flag.env_var: flag.default}, scan_flags=scan)
    assert getattr(from_env, flag.field) == getattr(from_default, flag.field) == expected
    assert (from_default.sources[flag.name], from_env.sources[flag.name]) == ("default", "env")
