"""The command line as a Prometheus exporter's: `--version` anywhere, `--help` naming each flag's
environment variable and value type, and `scan --help` hiding flags that do nothing for one scan."""

from __future__ import annotations

import pytest

from ringwatch.cli import main, version_line
from ringwatch.config import FLAGS, load_config

SERVE_ONLY = {
    "scan.interval",
    "snapshot.max-age",
    "metrics.member-states",
    "web.listen-address",
    "web.telemetry-path",
    "web.config.file",
}
PLACEHOLDERS = {
    "TABLE",
    "RING_KEY",
    "REGION",
    "URL",
    "DURATION",
    "N",
    "MODE",
    "HOST:PORT",
    "FILE",
    "LEVEL",
    "FORMAT",
    "UNIX_SECONDS",
    "PATH",
}


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["version"],
        ["serve", "--version"],
        ["scan", "--version"],
        ["simulate", "--version"],
        ["demo", "--version"],
        ["serve", "--dynamodb.table=t", "--version"],
    ],
)
def test_version_is_answered_before_and_after_a_subcommand(args, capsys) -> None:
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == version_line()


def help_text(args: list[str], capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "200")  # one flag a line, whatever the terminal
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_serve_help_shows_each_flags_env_var_and_typed_placeholder(capsys, monkeypatch) -> None:
    text = help_text(["serve", "--help"], capsys, monkeypatch)
    for flag in FLAGS:
        if flag.scan_only:
            assert flag.option not in text
            continue
        assert flag.env_var in text, flag.name
        if not flag.boolean:
            assert flag.metavar in PLACEHOLDERS, flag.name
            assert f"{flag.option} {flag.metavar}" in text, flag.name
    assert " VALUE" not in text


def test_scan_help_hides_flags_that_do_nothing_for_one_scan_but_accepts_them(
    capsys, monkeypatch
) -> None:
    text = help_text(["scan", "--help"], capsys, monkeypatch)
    assert {f.name for f in FLAGS if f.serve_only} == SERVE_ONLY
    for name in SERVE_ONLY:
        assert f"--{name}" not in text, name
    for flag in FLAGS:
        if not flag.serve_only:
            assert flag.option in text and flag.env_var in text, flag.name
    # A config file shared with `serve` still loads: the keys are accepted, not refused.
    config = load_config(
        [
            "--dynamodb.table=t",
            "--dynamodb.region=r",
            "--scan.interval=5s",
            "--web.listen-address=:9999",
        ],
        environ={},
        scan_flags=True,
    )
    assert config.scan_interval == 5
