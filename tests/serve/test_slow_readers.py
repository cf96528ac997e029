"""Clients that send `GET /metrics` and never read: the response cannot be
written, so after RESPONSE_WRITE_TIMEOUT the connection is reset; memory stays
bounded meanwhile and other scrapes stay fast."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import pytest
from support.cortexdata import load_dump
from support.hostile import HostileDynamo, MetricsPoller, wait_until
from support.webserve import get, serving

import ringwatch.serve.http

CLIENTS = 200
WRITE_TIMEOUT = 2.0
TCP_ESTABLISHED = 1


def _big_ring() -> list[dict]:
    """The healthy dump's members, each copied 400 times: an exposition of megabytes."""
    items = []
    for item in load_dump("healthy")["Items"]:
        for i in range(400):
            copy = dict(item)
            copy["InstanceKey"] = {"S": f"{item['InstanceKey']['S']}-{i}"}
            items.append(copy)
    return items


def _tcp_state(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def _never_reading_client(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    return sock


def test_clients_that_never_read_are_dropped_after_the_write_timeout(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(
        ringwatch.serve.http, "RESPONSE_WRITE_TIMEOUT", WRITE_TIMEOUT, raising=False
    )

    async def run() -> None:
        with HostileDynamo(items=_big_ring()) as hostile:
            async with serving(hostile, extra_argv=["--scan.interval", "60s"]) as port:
                base = f"http://127.0.0.1:{port}"
                await wait_until(lambda: hostile.count() > 0, 10)
                for _ in range(100):
                    if (await get(base + "/-/ready"))[0] == 200:
                        break
                    await asyncio.sleep(0.1)
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(base + "/metrics") as resp,
                ):
                    size = len(await resp.read())
                rss_before = _rss_mib()
                socks = [await _never_reading_client(port) for _ in range(CLIENTS)]
                started = time.monotonic()  # the last request is sent
                peak = rss_before
                async with MetricsPoller(base + "/metrics", pause=0.05) as poller:
                    deadline = started + WRITE_TIMEOUT + 4.0
                    while time.monotonic() < deadline:
                        peak = max(peak, _rss_mib())
                        held = sum(_tcp_state(s) == TCP_ESTABLISHED for s in socks)
                        if not held:
                            break
                        await asyncio.sleep(0.1)
                    dropped_after = time.monotonic() - started
                rss_after = _rss_mib()
                for sock in socks:
                    sock.close()
                print(
                    f"\n{CLIENTS} clients that never read a {size / 2**20:.1f} MiB /metrics: "
                    f"{CLIENTS - held} dropped {dropped_after:.2f}s after the last request "
                    f"(write timeout {WRITE_TIMEOUT}s); RSS {rss_before:.0f} MiB before, "
                    f"peak {peak:.0f}, {rss_after:.0f} after; {poller.summary()}"
                )
                assert size > 2 * 2**20, "responses larger than the socket buffers"
                assert held == 0, f"{held} of {CLIENTS} never-reading clients still connected"
                assert dropped_after < WRITE_TIMEOUT + 3.0
                assert peak - rss_before < 50, "buffered bytes per slow client are bounded"
                assert not poller.failures, poller.failures[:3]
                assert sorted(poller.latencies)[len(poller.latencies) // 2] < 0.5

    asyncio.run(run())
    assert not [r for r in caplog.records if r.exc_info], "a dropped client logs no traceback"
