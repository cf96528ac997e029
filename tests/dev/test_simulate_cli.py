"""`ringwatch simulate` from the command line: documented flags, ringwatch's log format."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from support.moto import MotoDynamo

from ringwatch.dev.simulator.cli import _parser


def test_every_simulate_flag_has_a_help_text_and_a_placeholder() -> None:
    for action in _parser()._actions:
        assert action.help, action.option_strings
        takes_value = action.nargs != 0
        if takes_value and action.choices is None:
            assert action.metavar and action.metavar.isupper(), action.option_strings


def test_simulate_logs_in_the_format_of_ringwatch_serve(moto_dynamo: MotoDynamo) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ringwatch",
            "simulate",
            "--dynamodb.table",
            "simulate-logs",
            "--dynamodb.endpoint-url",
            moto_dynamo.endpoint_url,
            "--create-table",
            "--members",
            "2",
            "--heartbeat.period",
            "1s",
            "--log.format",
            "json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        line = ""
        while "simulating" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        event = json.loads(line)
        assert list(event)[:4] == ["ts", "caller", "level", "msg"]
        assert event["level"] == "info" and event["caller"].startswith("cli.py:")
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
