"""`ringwatch scan` prints every value a decodable item can carry, and its stdout
failing is never mistaken for "problems found" (exit 1): a reader that goes away
ends it quietly with 141 (as SIGPIPE would), any other write error is one line
and exit 3."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cramjam
import pytest
from support.hostile import HostileDynamo, wire_item
from support.moto import MotoDynamo

from ringwatch.cortex.proto import InstanceDesc

NOW = 1_700_000_000
RING = "collectors/ring"


def member(
    name: str, version: int | str = 1, registered: int = NOW - 60, timestamp: int = NOW
) -> dict:
    desc = InstanceDesc(
        addr=f"{name}:9095",
        zone="zone-a",
        timestamp=timestamp,
        registered_timestamp=registered,
        tokens=[hash(name) % 2**32],
    )
    item = wire_item(RING, name, bytes(cramjam.snappy.compress_raw(desc.SerializeToString())))
    item["version"] = {"N": str(version)}
    return item


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RINGWATCH_", "AWS_"))}
    return env | {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def run_scan(
    endpoint: str, table: str, *args: str, shell_suffix: str = ""
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "ringwatch",
        "scan",
        "--dynamodb.table",
        table,
        "--dynamodb.endpoint-url",
        endpoint,
        "--dynamodb.max-attempts",
        "1",
        "--at",
        str(NOW),
        *args,
    ]
    if not shell_suffix:
        return subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=60)
    line = " ".join(f"'{part}'" for part in command) + " " + shell_suffix
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {line}"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )


def test_extreme_values_stored_in_dynamodb_are_printed_not_a_traceback(
    moto_dynamo: MotoDynamo,
) -> None:
    huge = 2**64 + 12345
    items = [
        member("huge-version", version=huge),
        member("far-future", registered=10**17),
        member("far-past", registered=-(2**62), timestamp=-(2**63)),
        # 5000 digits: moto stores it (DynamoDB would not); counted, never a crash.
        member("digits", version="0." + "1" * 5000),
    ]
    moto_dynamo.load("scan-extremes", items)
    result = run_scan(moto_dynamo.endpoint_url, "scan-extremes", "-o", "json")
    assert result.returncode == 1, result.stderr[-1000:]  # problems: stale, undecodable
    assert "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    [table] = document["tables"]
    members = {m["member"]: m for ring in table["rings"] for m in ring["members"]}
    # orjson writes integers up to 2^64; above, the exact decimal string.
    assert members["huge-version"]["cas_version"] == str(huge)
    assert members["far-future"]["registered_timestamp"] == 10**17
    assert members["far-past"]["registered_timestamp"] == -(2**62)
    assert members["far-past"]["heartbeat_timestamp"] == -(2**63)
    [error] = table["decode_errors"]
    assert (error["member"], error["reason"]) == ("digits", "value")

    text = run_scan(moto_dynamo.endpoint_url, "scan-extremes")
    assert text.returncode == 1, text.stderr[-1000:]
    assert str(huge) in text.stdout
    assert "item collectors/ring/digits SKIPPED, cannot decode (value)" in text.stdout


@pytest.fixture(scope="module")
def big_ring() -> HostileDynamo:
    """A ring whose report (~350 KB) is far larger than a pipe's buffer (64 KiB) plus
    what `head` reads before it exits."""
    with HostileDynamo(items=[member(f"ingester-{i:04d}") for i in range(5000)]) as hostile:
        yield hostile


@pytest.mark.parametrize("output", ["text", "json"])
def test_a_reader_that_goes_away_ends_the_scan_quietly_with_141(
    big_ring: HostileDynamo, output: str
) -> None:
    # bash's `read` takes one line, byte by byte, and exits: the reader is gone
    # while ringwatch still writes (GNU head may read the pipe dry before exiting).
    result = run_scan(
        big_ring.url, "t", "-o", output, shell_suffix='| (read -r line && echo "$line")'
    )
    assert result.stdout.count("\n") == 1
    assert result.stderr == ""
    assert result.returncode == 141


def test_a_closed_stdout_is_one_line_and_exit_3(big_ring: HostileDynamo) -> None:
    result = run_scan(big_ring.url, "t", shell_suffix=">&-")
    assert result.returncode == 3, result.stderr[-1000:]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("ringwatch: error: cannot write the report")


def test_a_full_disk_is_one_line_and_exit_3(big_ring: HostileDynamo) -> None:
    result = run_scan(big_ring.url, "t", shell_suffix=">/dev/full")
    assert result.returncode == 3, result.stderr[-1000:]
    [line] = result.stderr.strip().splitlines()
    assert "No space left on device" in line
