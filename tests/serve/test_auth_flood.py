"""A flood of wrong passwords against bcrypt cost 12 (the cost people deploy):
bcrypt runs off the event loop, so a legitimate scrape stays fast and scans keep
succeeding while 14 clients loop wrong passwords, each a new one (no cache helps).
Concurrent checks of the same credentials share one bcrypt run, and the number
of distinct credentials waiting for bcrypt is bounded."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import bcrypt
import pytest
from support.cortexdata import load_dump
from support.exposition import samples as metric_samples
from support.exposition import value
from support.hostile import HostileDynamo, MetricsPoller, percentile
from support.webserve import BcryptChecks, basic_auth, serving

from ringwatch.serve import webconfig

USER, PASSWORD = "prometheus", "correct horse"
FLOODERS = 14
SECONDS = 8.0


@pytest.fixture(scope="module")
def cost_12_config(tmp_path_factory: pytest.TempPathFactory) -> str:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=12)).decode()
    path = tmp_path_factory.mktemp("auth") / "web.yml"
    path.write_text(f"basic_auth_users:\n  {USER}: '{hashed}'\n")
    return str(path)


def test_wrong_password_flood_neither_slows_scrapes_nor_stops_scans(cost_12_config: str
                                                                     ) -> None:
    started = time.perf_counter()
    bcrypt.checkpw(b"x", bcrypt.hashpw(b"y", bcrypt.gensalt(rounds=12)))
    one_check = (time.perf_counter() - started) / 2
    refused: list[int] = []
    up_values: list[float] = []

    async def flood(url: str, n: int) -> None:
        async with aiohttp.ClientSession() as session:
            for i in range(10**9):
                headers = basic_auth(USER, f"wrong-{n}-{i}")
                async with session.get(url, headers=headers) as resp:
                    await resp.read()
                    refused.append(resp.status)

    async def scans_succeeded(session: aiohttp.ClientSession, url: str) -> float:
        async with session.get(url, headers=basic_auth(USER, PASSWORD)) as resp:
            samples = metric_samples(await resp.text())
        up_values.append(value(samples, "ringwatch_up", table="t"))
        return value(samples, "ringwatch_scans_total", table="t", result="success")

    async def run() -> tuple[MetricsPoller, float, float]:
        with HostileDynamo(items=list(load_dump("healthy")["Items"])) as hostile:
            async with serving(hostile, cost_12_config) as port, aiohttp.ClientSession() as s:
                url = f"http://127.0.0.1:{port}/metrics"
                await asyncio.sleep(1.5)  # the first scan, and Prometheus's first check
                before = await scans_succeeded(s, url)
                flooders = [asyncio.create_task(flood(url, n)) for n in range(FLOODERS)]
                async with MetricsPoller(url, pause=0.1,
                                         headers=basic_auth(USER, PASSWORD)) as poller:
                    for _ in range(int(SECONDS)):
                        await asyncio.sleep(1.0)
                        await scans_succeeded(s, url)
                for task in flooders:
                    task.cancel()
                await asyncio.gather(*flooders, return_exceptions=True)
                after = await scans_succeeded(s, url)
                return poller, before, after

    poller, before, after = asyncio.run(run())
    median = percentile(poller.latencies, 0.5)
    print(f"\nwrong-password flood: {FLOODERS} clients x {SECONDS:.0f}s against bcrypt cost 12 "
          f"(one check {one_check * 1000:.0f}ms): {len(refused)} refusals "
          f"({sorted(set(refused))}); legitimate scrape {poller.summary()}; "
          f"successful scans during the flood {after - before:.0f}; "
          f"ringwatch_up seen {sorted(set(up_values))}")
    assert not poller.failures, poller.failures[:3]
    assert median < 0.25, "a cached good password never waits behind the flood"
    assert set(refused) <= {401, 429} and refused
    assert after - before >= SECONDS / 2, "scans run on schedule (every 1s) during the flood"
    assert set(up_values) == {1.0}


def test_concurrent_identical_checks_share_one_bcrypt_run(bcrypt_checks: BcryptChecks
                                                          ) -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=8))
    auth = webconfig.BasicAuth({USER: hashed})
    async def run() -> list[bool]:
        return await asyncio.gather(*(auth.check(USER, "wrong") for _ in range(10)),
                                    *(auth.check(USER, PASSWORD) for _ in range(10)))

    try:
        results = asyncio.run(run())
    finally:
        auth.close()
    assert results == [False] * 10 + [True] * 10
    assert sorted(bcrypt_checks.passwords) == sorted(["wrong", PASSWORD])


def test_too_many_distinct_credentials_waiting_get_auth_busy() -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=8))
    auth = webconfig.BasicAuth({USER: hashed}, max_pending=4)

    async def run() -> list[object]:
        return await asyncio.gather(*(auth.check(USER, f"wrong-{i}") for i in range(10)),
                                    return_exceptions=True)

    try:
        results = asyncio.run(run())
    finally:
        auth.close()
    busy = [r for r in results if isinstance(r, webconfig.AuthBusy)]
    assert len(busy) == 6 and results.count(False) == 4, results


def test_wrong_passwords_never_evict_a_cached_right_one(bcrypt_checks: BcryptChecks
                                                         ) -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4))
    auth = webconfig.BasicAuth({USER: hashed}, cache_size=8)
    async def run() -> bool:
        assert await auth.check(USER, PASSWORD)
        for i in range(100):
            assert not await auth.check(USER, f"wrong-{i}")
        return await auth.check(USER, PASSWORD)

    try:
        assert asyncio.run(run())
    finally:
        auth.close()
    assert bcrypt_checks.passwords.count(PASSWORD) == 1
