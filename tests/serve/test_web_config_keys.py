"""Every exporter-toolkit web config key behaves as exporter-toolkit documents it
or is refused at start with one line: client_allowed_sans, cipher_suites,
prefer_server_cipher_suites, curve_preferences, http_server_config (headers,
http2), every client_auth_type, min/max_version, unknown and inline keys; a
rotated certificate is served without a restart; an encrypted key is one line
and exit 2, never a passphrase prompt."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from support.cli import serve_args
from support.hostile import HostileDynamo, serving_the_healthy_dump
from support.pki import client_context, issue_cert, make_pki, new_key, write_pem
from support.webserve import get, serving

from ringwatch.config import ConfigError
from ringwatch.serve.webconfig import load_web_config

GCM128 = "ECDHE-ECDSA-AES128-GCM-SHA256"
GCM256 = "ECDHE-ECDSA-AES256-GCM-SHA384"


hostile = pytest.fixture(serving_the_healthy_dump, scope="module", name="hostile")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _config(tmp_path: Path, pki: dict[str, str], tls_extra: str = "", rest: str = "") -> str:
    path = tmp_path / "web.yml"
    path.write_text(
        f"tls_server_config:\n  cert_file: {pki['cert']}\n  key_file: {pki['key']}\n"
        + tls_extra
        + rest
    )
    return str(path)


async def tls_get(port: int, context: ssl.SSLContext) -> tuple[int | None, str, bytes]:
    """GET /metrics over TLS: (status or None if refused, cipher, server certificate DER)."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"), 5
        )
    except (ssl.SSLError, ConnectionError, TimeoutError):
        return None, "", b""
    try:
        cipher = writer.get_extra_info("cipher")[0]
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = await asyncio.wait_for(reader.readline(), 5)
    except (ssl.SSLError, ConnectionError, TimeoutError):
        return None, "", b""
    finally:
        writer.close()
    return (int(head.split()[1]) if head else None), cipher, der


def _refused(config: str, *words: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_web_config(config)
    message = str(caught.value)
    print(f"\n{message}")
    assert "\n" not in message and "--web.config.file" in message
    for word in words:
        assert word in message
    return message


def _client_cert(
    tmp_path: Path, pki: dict[str, str], name: str, sans: list[x509.GeneralName]
) -> ssl.SSLContext:
    """A client context with a certificate from `own_pki`'s CA carrying `sans`."""
    ca_cert = x509.load_pem_x509_certificate(Path(pki["ca"]).read_bytes())
    key = new_key()
    cert = issue_cert(name, key, ca_cert.subject, _CA_KEYS[pki["ca"]], sans=sans)
    context = client_context(pki)
    context.load_cert_chain(
        write_pem(tmp_path / f"{name}.pem", cert), write_pem(tmp_path / f"{name}-key.pem", key=key)
    )
    return context


_CA_KEYS: dict[str, ec.EllipticCurvePrivateKey] = {}


@pytest.fixture()
def own_pki(tmp_path: Path) -> dict[str, str]:
    """A PKI whose CA key this test can sign more client certificates with."""
    ca_key = new_key()
    ca = issue_cert("ringwatch test CA 2", ca_key, ca=True)
    server_key = new_key()
    server = issue_cert("127.0.0.1", server_key, ca.subject, ca_key, server=True)
    paths = {
        "ca": write_pem(tmp_path / "ca2.pem", ca),
        "cert": write_pem(tmp_path / "server2.pem", server),
        "key": write_pem(tmp_path / "server2-key.pem", key=server_key),
    }
    _CA_KEYS[paths["ca"]] = ca_key
    return paths


# -- client_allowed_sans --------------------------------------------------------


def test_client_allowed_sans_refuses_a_certificate_without_an_allowed_san(
    hostile: HostileDynamo,
    tmp_path: Path,
    own_pki: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = _config(
        tmp_path,
        own_pki,
        "  client_auth_type: RequireAndVerifyClientCert\n"
        f"  client_ca_file: {own_pki['ca']}\n  client_allowed_sans:\n"
        "    - prometheus.example\n    - spiffe://cluster/sa/prometheus\n"
        "    - 10.0.0.7\n",
    )
    allowed_dns = _client_cert(tmp_path, own_pki, "a", [x509.DNSName("prometheus.example")])
    allowed_uri = _client_cert(
        tmp_path, own_pki, "b", [x509.UniformResourceIdentifier("spiffe://cluster/sa/prometheus")]
    )
    allowed_ip = _client_cert(
        tmp_path, own_pki, "c", [x509.IPAddress(ipaddress.ip_address("10.0.0.7"))]
    )
    other = _client_cert(tmp_path, own_pki, "d", [x509.DNSName("grafana.example")])
    no_san = _client_cert(tmp_path, own_pki, "prometheus.example", [])

    async def run() -> None:
        async with serving(hostile, config) as port:
            for context in (allowed_dns, allowed_uri, allowed_ip):
                assert (await tls_get(port, context))[0] == 200
            for context in (other, no_san):
                assert (await tls_get(port, context))[0] is None
            assert (await tls_get(port, allowed_dns))[0] == 200

    asyncio.run(run())
    assert not [r for r in caplog.records if r.exc_info], "a refused client logs no traceback"


def test_client_allowed_sans_without_a_required_verified_certificate_is_refused(
    tmp_path: Path, pki: dict[str, str]
) -> None:
    config = _config(
        tmp_path,
        pki,
        "  client_auth_type: VerifyClientCertIfGiven\n"
        f"  client_ca_file: {pki['ca']}\n"
        "  client_allowed_sans: [prometheus.example]\n",
    )
    _refused(config, "client_allowed_sans")


# -- cipher_suites, prefer_server_cipher_suites, curve_preferences -------------


def _tls12_client(pki: dict[str, str], ciphers: str) -> ssl.SSLContext:
    context = client_context(pki, max_version=ssl.TLSVersion.TLSv1_2)
    context.set_ciphers(ciphers)
    return context


def test_cipher_suites_limit_what_tls_1_2_negotiates(
    hostile: HostileDynamo, tmp_path: Path, pki: dict[str, str]
) -> None:
    config = _config(
        tmp_path,
        pki,
        "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256]\n",
    )

    async def run() -> None:
        async with serving(hostile, config) as port:
            assert (await tls_get(port, _tls12_client(pki, GCM128)))[0] is None
            status, cipher, _ = await tls_get(port, _tls12_client(pki, f"{GCM128}:{GCM256}"))
            assert (status, cipher) == (200, GCM256)
            assert (await tls_get(port, client_context(pki)))[0] == 200, "TLS 1.3 unaffected"

    asyncio.run(run())


def test_unknown_cipher_suite_is_refused(tmp_path: Path, pki: dict[str, str]) -> None:
    _refused(
        _config(tmp_path, pki, "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n"),
        "TLS_RSA_WITH_RC4_128_SHA",
    )


@pytest.mark.parametrize(("prefer", "expected"), [("true", GCM256), ("false", GCM128)])
def test_prefer_server_cipher_suites_decides_whose_order_wins(
    hostile: HostileDynamo, tmp_path: Path, pki: dict[str, str], prefer: str, expected: str
) -> None:
    config = _config(
        tmp_path,
        pki,
        "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,"
        " TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n"
        f"  prefer_server_cipher_suites: {prefer}\n",
    )

    async def run() -> str:
        async with serving(hostile, config) as port:
            status, cipher, _ = await tls_get(port, _tls12_client(pki, f"{GCM128}:{GCM256}"))
            assert status == 200
            return cipher

    assert asyncio.run(run()) == expected


def test_curve_preferences_with_one_curve_is_enforced(
    hostile: HostileDynamo, tmp_path: Path, pki: dict[str, str]
) -> None:
    config = _config(tmp_path, pki, "  curve_preferences: [CurveP384]\n")

    def client(curve: str) -> ssl.SSLContext:
        context = client_context(pki)
        context.set_ecdh_curve(curve)
        return context

    async def run() -> None:
        async with serving(hostile, config) as port:
            assert (await tls_get(port, client("prime256v1")))[0] is None
            assert (await tls_get(port, client("secp384r1")))[0] == 200

    asyncio.run(run())


@pytest.mark.parametrize(
    ("curves", "words"), [("[CurveP256, X25519]", ("one curve",)), ("[CurveP999]", ("CurveP999",))]
)
def test_curve_preferences_that_cannot_be_honoured_are_refused(
    tmp_path: Path, pki: dict[str, str], curves: str, words: tuple[str, ...]
) -> None:
    _refused(_config(tmp_path, pki, f"  curve_preferences: {curves}\n"), *words)


# -- http_server_config ------------------------------------------------------


def test_configured_headers_are_added_to_every_response(
    hostile: HostileDynamo, tmp_path: Path
) -> None:
    config = tmp_path / "web.yml"
    config.write_text(
        "http_server_config:\n  http2: false\n  headers:\n"
        "    Strict-Transport-Security: max-age=31536000\n"
        "    X-Frame-Options: deny\n"
        "    Content-Security-Policy: \"default-src 'self'\"\n"
    )

    async def run() -> None:
        async with serving(hostile, str(config)) as port:
            await asyncio.sleep(1.5)
            for path in ("/", "/metrics", "/-/ready", "/ring.json", "/ring", "/nope"):
                _, headers = await get(f"http://127.0.0.1:{port}{path}")
                assert headers.get("Strict-Transport-Security") == "max-age=31536000", path
                assert headers.get("X-Frame-Options") == "deny", path
                csp = headers.get("Content-Security-Policy")
                if path == "/ring":
                    assert csp is not None and "default-src 'none'" in csp, "/ring keeps its own"
                else:
                    assert csp == "default-src 'self'", path

    asyncio.run(run())


@pytest.mark.parametrize(
    ("http", "words"),
    [
        ("headers:\n    Server: ringwatch", ("Server",)),
        ("headers:\n    Access-Control-Allow-Origin: '*'", ("Access-Control-Allow-Origin",)),
        ("headers:\n    X-Frame-Options: allow", ("X-Frame-Options",)),
        ("headers:\n    X-Content-Type-Options: sniff", ("X-Content-Type-Options",)),
        ("http2: true", ("http2",)),
        ("compression: true", ("http_server_config.compression",)),
    ],
)
def test_http_server_config_that_cannot_be_honoured_is_refused(
    tmp_path: Path, http: str, words: tuple[str, ...]
) -> None:
    config = tmp_path / "web.yml"
    config.write_text(f"http_server_config:\n  {http}\n")
    _refused(str(config), *words)


# -- client_auth_type ----------------------------------------------------------


def _stranger(tmp_path: Path, pki: dict[str, str]) -> ssl.SSLContext:
    key = new_key()
    context = client_context(pki)
    context.load_cert_chain(
        write_pem(tmp_path / "s.pem", issue_cert("stranger", key)),
        write_pem(tmp_path / "s-key.pem", key=key),
    )
    return context


def test_request_client_cert_accepts_any_client_as_go_does(
    hostile: HostileDynamo, tmp_path: Path, pki: dict[str, str]
) -> None:
    config = _config(
        tmp_path, pki, f"  client_auth_type: RequestClientCert\n  client_ca_file: {pki['ca']}\n"
    )

    async def run() -> None:
        async with serving(hostile, config) as port:
            assert (await tls_get(port, client_context(pki)))[0] == 200
            assert (await tls_get(port, client_context(pki, with_cert=True)))[0] == 200
            assert (await tls_get(port, _stranger(tmp_path, pki)))[0] == 200

    asyncio.run(run())


def test_verify_client_cert_if_given_refuses_only_an_unverifiable_one(
    hostile: HostileDynamo, tmp_path: Path, pki: dict[str, str]
) -> None:
    config = _config(
        tmp_path,
        pki,
        f"  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: {pki['ca']}\n",
    )

    async def run() -> None:
        async with serving(hostile, config) as port:
            assert (await tls_get(port, client_context(pki)))[0] == 200
            assert (await tls_get(port, client_context(pki, with_cert=True)))[0] == 200
            assert (await tls_get(port, _stranger(tmp_path, pki)))[0] is None

    asyncio.run(run())


@pytest.mark.parametrize("auth_type", ["RequireAnyClientCert", "RequireClientCert"])
def test_require_any_client_cert_is_refused_with_what_to_use_instead(
    tmp_path: Path, pki: dict[str, str], auth_type: str
) -> None:
    _refused(
        _config(tmp_path, pki, f"  client_auth_type: {auth_type}\n"),
        f"client_auth_type {auth_type}",
        "RequireAndVerifyClientCert",
        "client_ca_file",
    )


def test_client_ca_file_without_client_auth_type_is_refused(
    tmp_path: Path, pki: dict[str, str]
) -> None:
    _refused(_config(tmp_path, pki, f"  client_ca_file: {pki['ca']}\n"), "client_ca_file")


# -- versions, unknown and inline keys ------------------------------------------


def test_min_version_above_max_version_is_refused(tmp_path: Path, pki: dict[str, str]) -> None:
    _refused(
        _config(tmp_path, pki, "  min_version: TLS13\n  max_version: TLS12\n"),
        "min_version",
        "max_version",
    )


def test_max_version_is_enforced(
    hostile: HostileDynamo, tmp_path: Path, pki: dict[str, str]
) -> None:
    config = _config(tmp_path, pki, "  max_version: TLS12\n")

    async def run() -> None:
        async with serving(hostile, config) as port:
            tls13_only = client_context(pki)
            tls13_only.minimum_version = ssl.TLSVersion.TLSv1_3
            assert (await tls_get(port, tls13_only))[0] is None
            assert (await tls_get(port, client_context(pki)))[0] == 200

    asyncio.run(run())


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("rate_limit:\n  burst: 10\n", ("rate_limit",)),
        (
            "tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  ocsp: true\n",
            ("tls_server_config.ocsp",),
        ),
        (
            "tls_server_config:\n  cert: '-----BEGIN CERTIFICATE-----'\n  key_file: {key}\n",
            ("tls_server_config.cert", "cert_file"),
        ),
        ("tls_server_config:\n  cert_file: {cert}\n  key: secret\n", ("tls_server_config.key",)),
        (
            "tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
            "  prefer_server_cipher_suites: maybe\n",
            ("prefer_server_cipher_suites",),
        ),
        (
            "tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
            "  cipher_suites: TLS_AES_128_GCM_SHA256\n",
            ("cipher_suites",),
        ),
    ],
)
def test_unknown_inline_and_mistyped_keys_are_refused(
    tmp_path: Path, pki: dict[str, str], text: str, words: tuple[str, ...]
) -> None:
    config = tmp_path / "web.yml"
    config.write_text(text.format(cert=pki["cert"], key=pki["key"]))
    _refused(str(config), *words)


# -- certificate rotation --------------------------------------------------------


def test_a_rotated_certificate_is_served_without_a_restart(
    hostile: HostileDynamo, tmp_path: Path, own_pki: dict[str, str]
) -> None:
    cert_path, key_path = tmp_path / "live.pem", tmp_path / "live-key.pem"
    cert_path.write_bytes(Path(own_pki["cert"]).read_bytes())
    key_path.write_bytes(Path(own_pki["key"]).read_bytes())
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config:\n  cert_file: {cert_path}\n  key_file: {key_path}\n")
    ca_cert = x509.load_pem_x509_certificate(Path(own_pki["ca"]).read_bytes())
    new_server_key = new_key()
    rotated = issue_cert(
        "127.0.0.1", new_server_key, ca_cert.subject, _CA_KEYS[own_pki["ca"]], server=True
    )
    context = client_context(own_pki)

    def replace(path: Path, data: bytes) -> None:
        staging = path.with_suffix(".new")
        staging.write_bytes(data)
        os.replace(staging, path)

    async def run() -> None:
        async with serving(hostile, str(config)) as port:
            status, _, first = await tls_get(port, context)
            assert status == 200
            assert first == x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(
                serialization.Encoding.DER
            )
            replace(
                key_path,
                new_server_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
            replace(cert_path, rotated.public_bytes(serialization.Encoding.PEM))
            status, _, second = await tls_get(port, context)
            assert status == 200
            assert second == rotated.public_bytes(serialization.Encoding.DER), "new cert served"
            replace(cert_path, b"not a certificate")  # a botched rotation
            status, _, third = await tls_get(port, context)
            assert (status, third) == (200, second), "the last good certificate stays"

    asyncio.run(run())


def test_a_rotated_client_ca_file_is_used_without_a_restart(
    hostile: HostileDynamo, tmp_path: Path, pki: dict[str, str], own_pki: dict[str, str]
) -> None:
    ca_path = tmp_path / "clients-ca.pem"
    ca_path.write_bytes(Path(pki["ca"]).read_bytes())
    config = _config(
        tmp_path,
        pki,
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca_path}\n",
    )
    from_new_ca = _client_cert(tmp_path, own_pki, "n", [x509.DNSName("prometheus.example")])
    from_new_ca.load_verify_locations(pki["ca"])
    new_ca = Path(own_pki["ca"]).read_bytes()

    async def run() -> None:
        async with serving(hostile, config) as port:
            assert (await tls_get(port, client_context(pki, with_cert=True)))[0] == 200
            assert (await tls_get(port, from_new_ca))[0] is None
            staging = tmp_path / "clients-ca.new"
            staging.write_bytes(new_ca)
            os.replace(staging, ca_path)
            assert (await tls_get(port, from_new_ca))[0] == 200
            assert (await tls_get(port, client_context(pki, with_cert=True)))[0] is None

    asyncio.run(run())


# -- an encrypted key ----------------------------------------------------------------


def test_encrypted_key_is_one_line_and_exit_2_never_a_passphrase_prompt(
    hostile: HostileDynamo, tmp_path: Path
) -> None:
    key = new_key()
    cert = write_pem(tmp_path / "c.pem", issue_cert("127.0.0.1", key, server=True))
    key_file = write_pem(tmp_path / "k.pem", key=key, passphrase=b"secret")
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key_file}\n")
    argv = [
        sys.executable,
        "-m",
        "ringwatch",
        *serve_args(hostile.url),
        "--web.config.file",
        str(config),
    ]
    master, slave = os.openpty()
    # The child opens the pty as its controlling terminal (it leads a new session),
    # so OpenSSL would prompt there, as it does for an operator at a terminal.
    launcher = (
        f"import os, sys; os.open({os.ttyname(slave)!r}, os.O_RDWR); "
        f"os.execv(sys.executable, {argv!r})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    os.close(slave)
    started = time.monotonic()
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    finally:
        os.set_blocking(master, False)
        try:
            on_terminal = os.read(master, 4096)
        except OSError:
            on_terminal = b""
        os.close(master)
    lines = err.strip().splitlines()
    print(
        f"\nencrypted key: exit {proc.returncode} after {time.monotonic() - started:.1f}s, "
        f"stderr {lines}, terminal {on_terminal!r}"
    )
    assert b"pass" not in on_terminal.lower(), "no passphrase prompt on the terminal"
    assert proc.returncode == 2
    assert len(lines) == 1 and key_file in lines[0] and "encrypted" in lines[0]
