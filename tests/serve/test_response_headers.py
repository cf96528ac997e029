"""Response headers: `X-Content-Type-Options: nosniff` on every response (errors
and 401s included), a Content-Security-Policy on /ring that allows no script,
and gzip only when Accept-Encoding allows it (q=0 refuses)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import bcrypt
import pytest
from support.hostile import HostileDynamo, serving_the_healthy_dump
from support.webserve import basic_auth, get, serving

from ringwatch.serve.http import accepts_gzip

ENDPOINTS = ("/", "/metrics", "/-/healthy", "/-/ready", "/ring", "/ring.json")


hostile = pytest.fixture(serving_the_healthy_dump, scope="module", name="hostile")


def test_every_response_carries_nosniff(hostile: HostileDynamo, tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  u: '{hashed}'\n")

    async def run() -> None:
        async with serving(hostile) as port:
            for path in (*ENDPOINTS, "/no-such-page"):
                status, headers = await get(f"http://127.0.0.1:{port}{path}")
                assert headers.get("X-Content-Type-Options") == "nosniff", (path, status)
        async with serving(hostile, str(config)) as port:
            for path in ENDPOINTS:
                for auth in ({}, basic_auth("u", "pw")):
                    status, headers = await get(f"http://127.0.0.1:{port}{path}", headers=auth)
                    assert headers.get("X-Content-Type-Options") == "nosniff", (path, status)

    asyncio.run(run())


def test_ring_page_has_a_csp_that_allows_no_script(hostile: HostileDynamo) -> None:
    async def run() -> dict[str, str]:
        async with serving(hostile) as port:
            await asyncio.sleep(1.5)
            status, headers = await get(f"http://127.0.0.1:{port}/ring")
            assert status == 200
            return headers

    policy = asyncio.run(run()).get("Content-Security-Policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives.get("default-src") == ["'none'"], policy
    assert "script-src" not in directives, "no script source at all, not even inline"
    assert directives.get("frame-ancestors") == ["'none'"]
    assert directives.get("form-action") == ["'none'"]


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("gzip, deflate, br", True),
        ("x-gzip", True),
        ("gzip;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0", False),
        ("gzip;q=0, *;q=1", False),
        ("deflate", False),
        ("identity", False),
        ("", False),
        ("*;q=0", False),
        ("identity, *;q=0", False),
        ("gzip;q=bogus", False),
        ("br, gzip;q=0.000", False),
    ],
)
def test_gzip_follows_accept_encoding_q_values(accept_encoding: str, gzipped: bool) -> None:
    assert accepts_gzip(accept_encoding) is gzipped


def test_gzip_q0_gets_an_uncompressed_metrics_page(hostile: HostileDynamo) -> None:
    async def run() -> None:
        async with serving(hostile) as port:
            url = f"http://127.0.0.1:{port}/metrics"
            for header, encoding in (
                ("gzip;q=0", None),
                ("gzip", "gzip"),
                ("deflate, gzip;q=0", None),
            ):
                _, headers = await get(url, headers={"Accept-Encoding": header})
                assert headers.get("Content-Encoding") == encoding, header

    asyncio.run(run())
