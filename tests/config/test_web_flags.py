"""`--web.listen-address` is repeatable and every address is served; `--web.telemetry-path`
moves the metrics. Through a real `ringwatch serve` reading a moto table."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from support.cli import assert_one_line_exit_2, run_ringwatch, start_ringwatch
from support.moto import MotoDynamo
from support.net import stop_process

TABLE = "web-flags"


@pytest.fixture(scope="module")
def moto(moto_dynamo: MotoDynamo) -> MotoDynamo:
    moto_dynamo.load_dump(TABLE, "healthy")
    return moto_dynamo


@contextmanager
def serving(moto: MotoDynamo, *args: str, listening: int = 1) -> Iterator[list[str]]:
    """`ringwatch serve ARGS`; yields the http://host:port of each address it listens on."""
    running = start_ringwatch(
        "serve",
        "--dynamodb.table",
        TABLE,
        "--dynamodb.region",
        "us-east-1",
        "--dynamodb.endpoint-url",
        moto.endpoint_url,
        "--scan.interval",
        "1s",
        *args,
        listening=listening,
    )
    try:
        yield running.addresses
    finally:
        stop_process(running.proc)


def get(url: str) -> tuple[int, str]:
    """Status and body of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def ready(base: str) -> None:
    deadline = time.monotonic() + 20
    while get(f"{base}/-/ready")[0] != 200:
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.1)


def test_every_listen_address_is_served(moto: MotoDynamo) -> None:
    with serving(
        moto,
        "--web.listen-address",
        "127.0.0.1:0",
        "--web.listen-address",
        "127.0.0.2:0",
        listening=2,
    ) as addresses:
        assert [a.rsplit(":", 1)[0] for a in addresses] == ["http://127.0.0.1", "http://127.0.0.2"]
        ready(addresses[0])
        for base in addresses:
            status, body = get(f"{base}/metrics")
            assert status == 200, base
            assert "ringwatch_up" in body and 'member="ingester-1"' in body, base


def test_the_telemetry_path_moves_the_metrics_and_the_links(moto: MotoDynamo) -> None:
    with serving(
        moto, "--web.listen-address", "127.0.0.1:0", "--web.telemetry-path", "/probe/metrics"
    ) as (base,):
        ready(base)
        status, body = get(f"{base}/probe/metrics")
        assert status == 200
        assert "ringwatch_up" in body and 'member="ingester-1"' in body
        assert get(f"{base}/metrics")[0] == 404
        assert 'href="probe/metrics"' in get(f"{base}/")[1]
        assert 'href="probe/metrics"' in get(f"{base}/ring")[1]


def test_listen_addresses_come_comma_separated_from_the_environment() -> None:
    from ringwatch.config import load_config

    config = load_config(
        ["--dynamodb.table", "t", "--dynamodb.region", "r"],
        environ={"RINGWATCH_WEB_LISTEN_ADDRESS": "127.0.0.1:1, [::1]:2"},
    )
    assert config.listen_addresses == ("127.0.0.1:1", "[::1]:2")
    assert config.listen_host_ports == [("127.0.0.1", 1), ("::1", 2)]
    assert (
        load_config(
            ["--dynamodb.table", "t", "--dynamodb.region", "r"], environ={}
        ).web_telemetry_path
        == "/metrics"
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (
            ["--web.listen-address", ":10960", "--web.listen-address", ":10960"],
            "--web.listen-address=:10960,:10960: an address is named twice",
        ),
        (["--web.telemetry-path", "/ring"], "--web.telemetry-path=/ring: is one of"),
        (["--web.telemetry-path", "/-/healthy"], "--web.telemetry-path=/-/healthy: is one of"),
        (["--web.telemetry-path", "/"], "--web.telemetry-path=/: is one of"),
        (["--web.telemetry-path", "metrics"], "--web.telemetry-path=metrics: not a URL path"),
        (["--web.telemetry-path", "/{name}"], "--web.telemetry-path=/{name}: not a URL path"),
        (["--web.telemetry-path", "/a?b"], "--web.telemetry-path=/a?b: not a URL path"),
        (["--web.telemetry-path", "/" + "m" * 300], "--web.telemetry-path=/mmm"),
    ],
)
def test_a_bad_telemetry_path_or_a_listen_address_named_twice_is_refused(
    args: list[str], named: str
) -> None:
    result = run_ringwatch(
        "serve",
        "--dynamodb.table",
        "t",
        "--dynamodb.region",
        "r",
        "--dynamodb.endpoint-url",
        "http://127.0.0.1:9",
        *args,
    )
    assert_one_line_exit_2(result, named)


def test_a_second_listen_address_in_use_is_one_line_and_exit_2() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = run_ringwatch(
            "serve",
            "--dynamodb.table",
            "t",
            "--dynamodb.region",
            "r",
            "--dynamodb.endpoint-url",
            "http://127.0.0.1:9",
            "--web.listen-address",
            "127.0.0.2:0",
            "--web.listen-address",
            address,
        )
    assert_one_line_exit_2(result, f"--web.listen-address=127.0.0.2:0,{address}: cannot listen")
    assert "in use" in result.stderr
