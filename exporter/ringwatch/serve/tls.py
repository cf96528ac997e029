"""TLS of the web config: the server's SSLContext, rebuilt when its files change.

Certificates, keys and client CAs are re-read when their files change, checked on
every TLS handshake (exporter-toolkit re-reads them per handshake too).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
from dataclasses import dataclass
from typing import Any

from ringwatch.config import ConfigError
from ringwatch.logs import log

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Go's crypto/tls (what exporter-toolkit uses) accepts any client with
# RequestClientCert and never looks at the certificate; not asking for one
# (CERT_NONE) accepts the same clients.
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Require a certificate and verify nothing: Python's ssl module has no way to
# accept an unverified certificate it required (no verify callback).
UNVERIFIED_REQUIRED = ("RequireAnyClientCert", "RequireClientCert")
# Go's names (crypto/tls CipherSuites(), the ones exporter-toolkit accepts) to
# OpenSSL's, for TLS 1.2 and below.
CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
# TLS 1.3's suites are fixed in Go (the names are accepted and change nothing)
# and Python's ssl cannot choose them either: the same behaviour.
TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
CURVES = {
    "CurveP256": "prime256v1",
    "CurveP384": "secp384r1",
    "CurveP521": "secp521r1",
    "X25519": "X25519",
}


@dataclass(frozen=True)
class TLSSettings:
    """tls_server_config, checked: what every SSLContext is built from."""

    cert_file: str
    key_file: str
    client_ca_file: str | None
    verify_mode: ssl.VerifyMode
    min_version: ssl.TLSVersion
    max_version: ssl.TLSVersion
    ciphers: str | None
    curve: str | None
    prefer_server_cipher_suites: bool
    allowed_sans: frozenset[str] | None

    def files(self) -> tuple[str, ...]:
        """The files whose change rebuilds the context."""
        return tuple(f for f in (self.cert_file, self.key_file, self.client_ca_file) if f)


class _EncryptedKey(Exception):
    pass


def _refuse_passphrase() -> bytes:
    # OpenSSL would otherwise prompt on the terminal for the key's passphrase.
    raise _EncryptedKey


def build_context(settings: TLSSettings) -> ssl.SSLContext:
    """A server SSLContext from the settings; ConfigError naming the file that failed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = settings.min_version
    context.maximum_version = settings.max_version
    if settings.ciphers:
        context.set_ciphers(settings.ciphers)
    if settings.curve:
        context.set_ecdh_curve(settings.curve)
    if settings.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(settings.cert_file, settings.key_file, password=_refuse_passphrase)
    except _EncryptedKey:
        raise ConfigError(
            f"key_file {settings.key_file} is encrypted; ringwatch does not "
            "prompt for a passphrase: give it an unencrypted key"
        ) from None
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load cert_file {settings.cert_file} with key_file {settings.key_file}: {exc}"
        ) from None
    context.verify_mode = settings.verify_mode
    if settings.client_ca_file:
        try:
            context.load_verify_locations(settings.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load client_ca_file {settings.client_ca_file}: {exc}"
            ) from None
    return context


def _signature(paths: tuple[str, ...]) -> tuple[tuple[int, int, int], ...]:
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append((-1, -1, -1))
        else:
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


class ReloadingTLS:
    """The server's SSLContext; a handshake after cert_file, key_file or client_ca_file
    changed gets a context built from the new files (a broken new file is logged and
    the last good context kept)."""

    def __init__(self, settings: TLSSettings) -> None:
        self.settings = settings
        self._seen = _signature(settings.files())
        self.context = build_context(settings)
        self.current = self.context
        self.context.sni_callback = self._on_client_hello

    def _on_client_hello(
        self, sslobj: ssl.SSLObject, _server_name: str | None, _context: ssl.SSLContext
    ) -> None:
        try:
            seen = _signature(self.settings.files())
            if seen != self._seen:
                self._seen = seen
                try:
                    self.current = build_context(self.settings)
                    log(
                        logging.INFO,
                        "TLS certificate files reloaded",
                        cert_file=self.settings.cert_file,
                    )
                except ConfigError as exc:
                    log(
                        logging.WARNING,
                        "TLS certificate files changed but cannot be "
                        "loaded; the previous ones stay in use",
                        err=str(exc),
                    )
            if self.current is not self.context:
                sslobj.context = self.current
        except Exception as exc:  # a handshake must never see a traceback
            log(logging.WARNING, "TLS reload check failed", err=repr(exc))


def peer_sans(peercert: dict[str, Any] | None) -> set[str]:
    """A verified peer certificate's SANs, written as Go writes them (IPs normalised)."""
    out: set[str] = set()
    for kind, value in (peercert or {}).get("subjectAltName", ()):
        if kind == "IP Address":
            try:
                value = str(ipaddress.ip_address(value.strip()))
            except ValueError:
                continue
        if kind in ("DNS", "email", "URI", "IP Address"):
            out.add(value)
    return out
