"""--web.config.file (exporter-toolkit format) and bad HTTP clients.

TLS with a self-signed CA made here, minimum version, client-certificate
verification; basic auth with bcrypt on every endpoint, with the successful
check cached; a bad web config stops startup with one line and exit 2; bad
HTTP input gets a clean 4xx while the exporter keeps serving; slowloris clients
neither stop /metrics answering others nor hold their sockets forever.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from support.cli import serve_args
from support.hostile import (
    HostileDynamo,
    MetricsPoller,
    percentile,
    serving_the_healthy_dump,
    wait_until,
)
from support.pki import client_context, issue_cert, make_pki, new_key, write_pem
from support.webserve import BcryptChecks, basic_auth, serving
from support.webserve import get as _get

import ringwatch.serve.main

ENDPOINTS = ("/", "/metrics", "/-/healthy", "/-/ready", "/ring", "/ring.json")
USER, PASSWORD = "prometheus", "correct horse"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return make_pki(tmp_path_factory.mktemp("pki"))


PASSWORD_HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=6)).decode()


# -- the exporter, in-process ------------------------------------------------

hostile = pytest.fixture(serving_the_healthy_dump, scope="module", name="hostile")


def _auth(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return basic_auth(user, password)


# -- basic auth ----------------------------------------------------------------


def test_basic_auth_applies_to_every_endpoint(hostile: HostileDynamo, tmp_path: Path) -> None:
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  {USER}: '{PASSWORD_HASH}'\n")

    async def run() -> None:
        async with serving(hostile, str(config)) as port:
            base = f"http://127.0.0.1:{port}"
            refused = [
                {},
                _auth(password="wrong"),
                _auth(user="nobody"),
                _auth(password=""),
                {"Authorization": "Basic !!!not-base64"},
                {"Authorization": "Bearer " + PASSWORD},
                {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
            ]
            for path in (*ENDPOINTS, "/no-such-page", "/metrics/../../etc/passwd"):
                for headers in refused:
                    status, got = await _get(base + path, headers=headers)
                    assert status == 401, (path, headers)
                    assert got["WWW-Authenticate"].startswith("Basic")
            for path in ENDPOINTS:
                status, _ = await _get(base + path, headers=_auth())
                assert status in (200, 503) if path == "/-/ready" else status == 200, path
            status, _ = await _get(base + "/no-such-page", headers=_auth())
            assert status == 404

    asyncio.run(run())


def test_bcrypt_results_are_cached_for_successes_and_failures(
    hostile: HostileDynamo, tmp_path: Path, bcrypt_checks: BcryptChecks
) -> None:
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  {USER}: '{PASSWORD_HASH}'\n")

    async def run() -> None:
        async with serving(hostile, str(config)) as port:
            url = f"http://127.0.0.1:{port}/metrics"
            for _ in range(10):
                assert (await _get(url, headers=_auth()))[0] == 200
            assert bcrypt_checks.passwords == [PASSWORD], "ten good scrapes, one bcrypt check"
            for _ in range(3):
                assert (await _get(url, headers=_auth(password="wrong")))[0] == 401
            assert bcrypt_checks.passwords.count("wrong") == 1, "a failed check is cached too"
            for _ in range(3):
                assert (await _get(url, headers=_auth(user="nobody", password="x")))[0] == 401
            assert bcrypt_checks.passwords.count("x") == 1, (
                "an unknown user costs one bcrypt check, cached"
            )
            assert (await _get(url, headers=_auth()))[0] == 200
            assert bcrypt_checks.passwords.count(PASSWORD) == 1

    asyncio.run(run())


def test_unknown_user_is_checked_against_the_costliest_hash_and_refused(
    hostile: HostileDynamo, tmp_path: Path, bcrypt_checks: BcryptChecks
) -> None:
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  {USER}: '{PASSWORD_HASH}'\n")

    async def run() -> None:
        async with serving(hostile, str(config)) as port:
            url = f"http://127.0.0.1:{port}/metrics"
            assert (await _get(url, headers=_auth(user="nobody", password="guess")))[0] == 401
            assert (await _get(url, headers=_auth(user="nobody", password=PASSWORD)))[0] == 401

    asyncio.run(run())
    assert bcrypt_checks.passwords == ["guess", PASSWORD]
    for _, hashed in bcrypt_checks.checked:
        assert hashed == PASSWORD_HASH.encode(), "the only (so the costliest) hash"


# -- TLS -----------------------------------------------------------------------


def test_tls_with_basic_auth_and_plain_http_refused(
    hostile: HostileDynamo, tmp_path: Path, pki: dict[str, str]
) -> None:
    config = tmp_path / "web.yml"
    config.write_text(
        f"tls_server_config:\n  cert_file: {pki['cert']}\n"
        f"  key_file: {pki['key']}\n"
        f"basic_auth_users:\n  {USER}: '{PASSWORD_HASH}'\n"
    )

    async def run() -> None:
        async with serving(hostile, str(config)) as port:
            https = f"https://127.0.0.1:{port}/metrics"
            context = client_context(pki)
            assert (await _get(https, ssl=context, headers=_auth()))[0] == 200
            assert (await _get(https, ssl=context))[0] == 401
            assert (await _get(https, ssl=context, headers=_auth(password="x")))[0] == 401
            with pytest.raises(aiohttp.ClientError):
                await _get(f"http://127.0.0.1:{port}/metrics", headers=_auth())
            with pytest.raises(aiohttp.ClientError):  # the CA is not trusted by default
                await _get(https, ssl=ssl.create_default_context(), headers=_auth())
            # Still serving after the bad clients.
            assert (await _get(https, ssl=context, headers=_auth()))[0] == 200

    asyncio.run(run())


def test_tls_minimum_version_is_enforced(
    hostile: HostileDynamo, tmp_path: Path, pki: dict[str, str]
) -> None:
    config = tmp_path / "web.yml"
    config.write_text(
        f"tls_server_config:\n  cert_file: {pki['cert']}\n"
        f"  key_file: {pki['key']}\n  min_version: TLS13\n"
    )

    async def run() -> None:
        async with serving(hostile, str(config)) as port:
            url = f"https://127.0.0.1:{port}/metrics"
            with pytest.raises(aiohttp.ClientError):
                await _get(url, ssl=client_context(pki, max_version=ssl.TLSVersion.TLSv1_2))
            assert (await _get(url, ssl=client_context(pki)))[0] == 200

    asyncio.run(run())


def test_client_certificate_is_verified(
    hostile: HostileDynamo, tmp_path: Path, pki: dict[str, str]
) -> None:
    config = tmp_path / "web.yml"
    config.write_text(
        f"tls_server_config:\n  cert_file: {pki['cert']}\n"
        f"  key_file: {pki['key']}\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n"
        f"  client_ca_file: {pki['ca']}\n"
    )
    stranger_key = new_key()
    stranger = issue_cert("stranger", stranger_key)  # self-signed, not from the CA
    stranger_paths = (
        write_pem(tmp_path / "s.pem", stranger),
        write_pem(tmp_path / "s-key.pem", key=stranger_key),
    )

    async def run() -> None:
        async with serving(hostile, str(config)) as port:
            url = f"https://127.0.0.1:{port}/metrics"
            assert (await _get(url, ssl=client_context(pki, with_cert=True)))[0] == 200
            with pytest.raises(aiohttp.ClientError):
                await _get(url, ssl=client_context(pki))
            context = client_context(pki)
            context.load_cert_chain(*stranger_paths)
            with pytest.raises(aiohttp.ClientError):
                await _get(url, ssl=context)
            assert (await _get(url, ssl=client_context(pki, with_cert=True)))[0] == 200

    asyncio.run(run())


# -- a bad web config stops startup -------------------------------------------

BAD_WEB_CONFIGS = {
    "not-yaml": "tls_server_config: [unclosed\n",
    "not-a-mapping": "- a\n- b\n",
    "unknown-key": "tls_config:\n  cert_file: x\n",
    "tls-without-key": "tls_server_config:\n  cert_file: {cert}\n",
    "missing-cert-file": "tls_server_config:\n  cert_file: /nonexistent.pem\n  key_file: {key}\n",
    "cert-and-key-swapped": "tls_server_config:\n  cert_file: {key}\n  key_file: {cert}\n",
    "bad-min-version": "tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
    "  min_version: SSL3\n",
    "bad-client-auth-type": "tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
    "  client_auth_type: Sometimes\n",
    "verify-without-ca": "tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
    "  client_auth_type: RequireAndVerifyClientCert\n",
    "plain-password": "basic_auth_users:\n  prometheus: hunter2\n",
    "empty-users": "basic_auth_users: {{}}\n",
    "deeply-nested": "basic_auth_users: " + "[" * 100_000 + "\n",
    "header-value-with-crlf": "http_server_config:\n  headers:\n"
    '    X-XSS-Protection: "1\\r\\nSet-Cookie: a=b"\n',
    "header-value-with-lf": "http_server_config:\n  headers:\n"
    '    Content-Security-Policy: "a\\nb"\n',
    "bcrypt-cost-3": "basic_auth_users:\n  prometheus: '$2b$03$" + "a" * 53 + "'\n",
    "bcrypt-cost-99": "basic_auth_users:\n  prometheus: '"
    + PASSWORD_HASH.replace("$06$", "$99$")
    + "'\n",
    "bcrypt-cost-31": "basic_auth_users:\n  prometheus: '"
    + PASSWORD_HASH.replace("$06$", "$31$")
    + "'\n",
    "bcrypt-bad-salt": "basic_auth_users:\n  prometheus: '$2b$06$" + "z" * 53 + "'\n",
    "require-any-client-cert": "tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
    "  client_auth_type: RequireAnyClientCert\n",
}
# What the line must name, beyond the file.
BAD_WEB_CONFIG_WORDS = {
    "deeply-nested": ("nest",),  # "nested deeper than", or libyaml's "nesting depth"
    "header-value-with-crlf": ("http_server_config.headers.X-XSS-Protection", "CR"),
    "header-value-with-lf": ("http_server_config.headers.Content-Security-Policy", "LF"),
    "bcrypt-cost-3": ("basic_auth_users.prometheus", "cost 3"),
    "bcrypt-cost-99": ("basic_auth_users.prometheus", "cost 99", "4 to 16"),
    "bcrypt-cost-31": ("basic_auth_users.prometheus", "cost 31"),
    "bcrypt-bad-salt": ("basic_auth_users.prometheus", "salt"),
    "require-any-client-cert": (
        "RequireAnyClientCert",
        "RequireAndVerifyClientCert",
        "client_ca_file",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_WEB_CONFIGS))
def test_bad_web_config_stops_startup_with_one_line_and_exit_2(
    name: str, hostile: HostileDynamo, tmp_path: Path, pki: dict[str, str]
) -> None:
    config = tmp_path / "web.yml"
    config.write_text(BAD_WEB_CONFIGS[name].format(cert=pki["cert"], key=pki["key"]))
    before = hostile.count()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ringwatch",
            *serve_args(hostile.url),
            "--web.config.file",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = done.stderr.strip().splitlines()
    print(f"\n{name}: {lines}")
    assert done.returncode == 2
    assert len(lines) == 1
    assert "--web.config.file" in lines[0] and str(config) in lines[0]
    for word in BAD_WEB_CONFIG_WORDS.get(name, ()):
        assert word in lines[0]
    assert hostile.count() == before, "no DynamoDB request before the config is good"


# -- bad HTTP input ------------------------------------------------------------

BAD_REQUESTS = {
    "huge-header": b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
    "too-many-headers": b"GET /metrics HTTP/1.1\r\n"
    + b"".join(b"X-%d: y\r\n" % i for i in range(300))
    + b"\r\n",
    "huge-url": b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "unknown-method": b"FOO /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    "post": b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    "delete": b"DELETE /ring HTTP/1.1\r\nHost: x\r\n\r\n",
    "trace": b"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n",
    "connect": b"CONNECT evil:443 HTTP/1.1\r\nHost: evil:443\r\n\r\n",
    "bad-version": b"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n",
    "binary-garbage": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 50 + b"\r\n\r\n",
    "bad-chunked": b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "absolute-uri": b"GET http://evil/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    "nul-in-path": b"GET /ring.json%00 HTTP/1.1\r\nHost: x\r\n\r\n",
}
TRAVERSALS = (
    "/../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/..%2f..%2fetc%2fpasswd",
    "//etc/passwd",
    "/.%2e/.%2e/etc/passwd",
    "/%252e%252e/etc/passwd",
)


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()


def test_bad_http_input_gets_a_clean_4xx_and_serving_goes_on(
    hostile: HostileDynamo, capfd: pytest.CaptureFixture[str]
) -> None:
    requests = dict(BAD_REQUESTS)
    for route in ENDPOINTS:
        for i, traversal in enumerate(TRAVERSALS):
            path = route.rstrip("/") + traversal
            requests[f"traversal {path}"] = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            requests[f"traversal-{i} {route}"] = (
                f"GET {route.rstrip('/')}/{traversal.lstrip('/')} HTTP/1.1\r\n"
                "Host: x\r\n\r\n".encode()
            )

    async def run() -> None:
        async with serving(hostile) as port:
            for name, data in requests.items():
                answer = await _raw(port, data)
                status = int(answer.split(b" ", 2)[1])
                assert 400 <= status < 500, (name, answer[:80])
                assert b"root:" not in answer, name
                assert (await _get(f"http://127.0.0.1:{port}/metrics"))[0] == 200, name

    asyncio.run(run())
    assert "Traceback" not in capfd.readouterr().err, "a bad request logs no traceback"


def test_slowloris_clients_neither_block_metrics_nor_hold_sockets_forever(
    hostile: HostileDynamo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ringwatch.serve.main, "CLIENT_IDLE_TIMEOUT", 2.0)
    clients = 300
    closed: list[float] = []

    async def loris(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 1000
        try:
            for i in range(len(request)):  # one byte every 0.25 s, never the end
                writer.write(request[i : i + 1])
                await writer.drain()
                if await _closed_within(reader, 0.25):
                    closed.append(time.monotonic())
                    return
        except ConnectionError:
            closed.append(time.monotonic())
        finally:
            writer.close()

    async def run() -> None:
        async with serving(hostile) as port:
            started = time.monotonic()
            lorises = [asyncio.create_task(loris(port)) for _ in range(clients)]
            async with MetricsPoller(f"http://127.0.0.1:{port}/metrics", pause=0.05) as poller:
                await wait_until(lambda: len(closed) == clients, 10, every=0.1)
            for task in lorises:
                task.cancel()
            await asyncio.gather(*lorises, return_exceptions=True)
            print(
                f"\nslowloris x{clients}: all closed by the server after "
                f"{max(closed) - started:.2f}s (bound 2s); {poller.summary()}"
            )
            assert not poller.failures
            # The first scrape shares this process's loop with 300 connects; on a loaded
            # 2-core machine that alone can take a second. The rest must stay fast.
            assert percentile(poller.latencies, 0.95) < 0.5
            assert max(poller.latencies) < 2.5
            assert max(closed) - started < 2.0 + 1.5

    asyncio.run(run())


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        data = await asyncio.wait_for(reader.read(1024), seconds)
    except TimeoutError:
        return False
    return not data or data.startswith(b"HTTP/")
