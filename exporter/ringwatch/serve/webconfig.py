"""`--web.config.file` in the Prometheus exporter-toolkit format.

Every key exporter-toolkit documents either behaves as it documents or is
refused at start with one line (exit 2); see the README's "Web config" section.
Certificates, keys and client CAs are re-read when their files change, checked
on every TLS handshake (exporter-toolkit re-reads them per handshake too).

Basic auth: bcrypt runs in one worker thread, never on the event loop, and its
results (successes and failures) are cached by a keyed digest of user, hash and
password, so a flood of wrong passwords costs one core at most and a scrape
with the right password never waits for bcrypt after its first check. A user
that does not exist is checked against a dummy hash of the same cost, so the
answer's timing does not tell which user names exist.
"""

from __future__ import annotations

import _ssl
import asyncio
import ctypes
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import ssl
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import bcrypt
import yaml

from ringwatch.config import ConfigError
from ringwatch.logs import log

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Go's crypto/tls (what exporter-toolkit uses) accepts any client with
# RequestClientCert and never looks at the certificate; not asking for one
# (CERT_NONE) accepts the same clients. RequireAnyClientCert (its old name
# RequireClientCert) requires a certificate and verifies nothing: see
# _accept_any_client_certificate.
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "RequireClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNVERIFIED_REQUIRED = ("RequireAnyClientCert", "RequireClientCert")
# Go's names (crypto/tls CipherSuites(), the ones exporter-toolkit accepts) to
# OpenSSL's, for TLS 1.2 and below.
_CIPHER_SUITES = {
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
_TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                 "TLS_CHACHA20_POLY1305_SHA256"}
_CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1",
           "X25519": "X25519"}
_TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version",
             "max_version", "cipher_suites", "prefer_server_cipher_suites", "curve_preferences",
             "client_allowed_sans", "cert", "key", "client_ca"}
# The only headers exporter-toolkit lets a web config set, with the values it
# allows (None: any value).
_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
_BCRYPT_HASH = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")


class AuthBusy(Exception):
    """Too many distinct credentials are waiting for bcrypt; try again later."""


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:
        return False


@dataclass
class BasicAuth:
    """basic_auth_users: bcrypt off the event loop, results cached, user names not revealed."""

    users: dict[str, bytes]
    dummy_hash: bytes = b""
    cache_size: int = 4096
    max_pending: int = 256
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    # Two caches, so that a flood of wrong passwords never evicts a right one.
    _matched: OrderedDict[bytes, None] = field(default_factory=OrderedDict)
    _refused: OrderedDict[bytes, None] = field(default_factory=OrderedDict)
    _pending: dict[bytes, asyncio.Future[bool]] = field(default_factory=dict)
    _executor: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        if not self.dummy_hash:
            cost = max((int(_BCRYPT_HASH.match(h.decode()).group(1))  # type: ignore[union-attr]
                        for h in self.users.values()), default=10)
            self.dummy_hash = bcrypt.hashpw(secrets.token_bytes(16).hex().encode(),
                                            bcrypt.gensalt(rounds=cost))

    def _digest(self, user: str, hashed: bytes, password: str) -> bytes:
        message = b"\0".join(part.hex().encode() for part in
                             (user.encode(), hashed, password.encode()))
        return hmac.new(self._key, message, hashlib.sha256).digest()

    async def check(self, user: str, password: str) -> bool:
        """True if the user exists and the password matches its hash."""
        hashed = self.users.get(user)
        known = hashed is not None
        if hashed is None:
            hashed = self.dummy_hash
        digest = self._digest(user, hashed, password)
        for cache, answer in ((self._matched, True), (self._refused, False)):
            if digest in cache:
                cache.move_to_end(digest)
                return answer
        pending = self._pending.get(digest)
        if pending is None:
            if len(self._pending) >= self.max_pending:
                raise AuthBusy
            if self._executor is None:
                # One thread: bcrypt never takes more than one core from scans and scrapes.
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="ringwatch-bcrypt")
            pending = asyncio.get_running_loop().run_in_executor(
                self._executor, _checkpw, password.encode(), hashed)
            self._pending[digest] = pending
            pending.add_done_callback(lambda done: self._remember(digest, known, done))
        # Shielded: a client that hangs up does not cancel the check others share.
        # Awaited for unknown users too: the answer takes as long as for a known one.
        matched = await asyncio.shield(pending)
        return known and matched

    def _remember(self, digest: bytes, known: bool, done: asyncio.Future[bool]) -> None:
        self._pending.pop(digest, None)
        if done.cancelled() or done.exception() is not None:
            return
        cache = self._matched if known and done.result() else self._refused
        cache[digest] = None
        while len(cache) > self.cache_size:
            cache.popitem(last=False)

    def close(self) -> None:
        """Stop the bcrypt thread (a check under way finishes on its own)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class TLSSettings:
    """tls_server_config, checked: what every SSLContext is built from."""

    cert_file: str
    key_file: str
    client_ca_file: str | None
    verify_mode: ssl.VerifyMode
    accept_any_client_cert: bool
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
        context.load_cert_chain(settings.cert_file, settings.key_file,
                                password=_refuse_passphrase)
    except _EncryptedKey:
        raise ConfigError(f"key_file {settings.key_file} is encrypted; ringwatch does not "
                          "prompt for a passphrase: give it an unencrypted key") from None
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load cert_file {settings.cert_file} with key_file "
                          f"{settings.key_file}: {exc}") from None
    context.verify_mode = settings.verify_mode
    if settings.client_ca_file:
        try:
            context.load_verify_locations(settings.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load client_ca_file {settings.client_ca_file}: "
                              f"{exc}") from None
    if settings.accept_any_client_cert and not _accept_any_client_certificate(context):
        raise ConfigError("client_auth_type RequireAnyClientCert cannot be set up with this "
                          "Python's ssl module: use RequireAndVerifyClientCert")
    return context


_SSL_VERIFY_PEER, _SSL_VERIFY_FAIL_IF_NO_PEER_CERT = 1, 2
_VerifyCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
# Module-level: OpenSSL keeps a pointer to it for as long as the contexts live.
_ACCEPT_ANY = _VerifyCallback(lambda _preverified, _store: 1)


def _accept_any_client_certificate(context: ssl.SSLContext) -> bool:
    """Require a client certificate and accept any, as Go's RequireAnyClientCert does.

    Python's ssl has no verify callback, so OpenSSL's SSL_CTX_set_verify is called
    through ctypes on the context's SSL_CTX (the first field after the object
    header of CPython's SSLContext). The pointer is checked first: it must report
    the verify modes Python sets through it. False when that check fails."""
    try:
        libssl = ctypes.CDLL(_ssl.__file__)
        get_mode, set_verify = libssl.SSL_CTX_get_verify_mode, libssl.SSL_CTX_set_verify
    except (AttributeError, OSError):
        return False
    get_mode.argtypes, get_mode.restype = [ctypes.c_void_p], ctypes.c_int
    set_verify.argtypes, set_verify.restype = [ctypes.c_void_p, ctypes.c_int,
                                               _VerifyCallback], None
    ssl_ctx = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    required = _SSL_VERIFY_PEER | _SSL_VERIFY_FAIL_IF_NO_PEER_CERT
    for mode, expected in ((ssl.CERT_OPTIONAL, _SSL_VERIFY_PEER),
                           (ssl.CERT_REQUIRED, required)):
        context.verify_mode = mode
        if not ssl_ctx or get_mode(ssl_ctx) != expected:
            return False
    set_verify(ssl_ctx, required, _ACCEPT_ANY)
    return True


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

    def _on_client_hello(self, sslobj: ssl.SSLObject, _server_name: str | None,
                         _context: ssl.SSLContext) -> None:
        try:
            seen = _signature(self.settings.files())
            if seen != self._seen:
                self._seen = seen
                try:
                    self.current = build_context(self.settings)
                    log(logging.INFO, "TLS certificate files reloaded",
                        cert_file=self.settings.cert_file)
                except ConfigError as exc:
                    log(logging.WARNING, "TLS certificate files changed but cannot be "
                        "loaded; the previous ones stay in use", err=str(exc))
            if self.current is not self.context:
                sslobj.context = self.current
        except Exception as exc:  # a handshake must never see a traceback
            log(logging.WARNING, "TLS reload check failed", err=repr(exc))


@dataclass
class WebConfig:
    """The parsed web config: TLS, basic auth, extra headers, allowed client SANs."""

    tls: ReloadingTLS | None = None
    basic_auth: BasicAuth | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The context to listen with, or None for plain HTTP."""
        return self.tls.context if self.tls else None

    @property
    def allowed_sans(self) -> frozenset[str] | None:
        """client_allowed_sans, if set: a client certificate must carry one of them."""
        return self.tls.settings.allowed_sans if self.tls else None


def peer_sans(peercert: dict | None) -> set[str]:
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


def _fail(path: str, message: str) -> ConfigError:
    return ConfigError(f"--web.config.file={path}: {message}")


def _resolve(base: str, name: str) -> str:
    return name if os.path.isabs(name) else os.path.join(os.path.dirname(base), name)


def _string_list(path: str, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, f"{key} must be a list of strings")
    return value


def _version(path: str, tls: dict, key: str, default: ssl.TLSVersion) -> ssl.TLSVersion:
    if key not in tls:
        return default
    version = _TLS_VERSIONS.get(str(tls[key]))
    if version is None:
        raise _fail(path, f"tls_server_config.{key}={tls[key]!r} is not one of "
                    f"{', '.join(_TLS_VERSIONS)}")
    return version


def _tls_settings(path: str, tls: dict) -> TLSSettings:
    unknown = set(tls) - _TLS_KEYS
    if unknown:
        raise _fail(path, f"unknown key tls_server_config.{sorted(unknown)[0]}")
    for inline in ("cert", "key", "client_ca"):
        if inline in tls:
            raise _fail(path, f"tls_server_config.{inline} (inline PEM) is not supported: "
                        f"use {inline}_file")
    for key in ("cert_file", "key_file", "client_ca_file", "client_auth_type"):
        if key in tls and not isinstance(tls[key], str):
            raise _fail(path, f"tls_server_config.{key} must be a string")
    if not tls.get("cert_file") or not tls.get("key_file"):
        raise _fail(path, "tls_server_config needs both cert_file and key_file")
    min_version = _version(path, tls, "min_version", ssl.TLSVersion.TLSv1_2)
    max_version = _version(path, tls, "max_version", ssl.TLSVersion.TLSv1_3)
    if min_version > max_version:
        raise _fail(path, f"tls_server_config.min_version {tls['min_version']} is above "
                    f"max_version {tls['max_version']}: no handshake could succeed")

    auth_type = tls.get("client_auth_type") or "NoClientCert"
    if auth_type not in _CLIENT_AUTH:
        raise _fail(path, f"tls_server_config.client_auth_type={auth_type!r} is not one of "
                    f"{', '.join(_CLIENT_AUTH)}")
    client_ca = tls.get("client_ca_file")
    if client_ca and auth_type == "NoClientCert":
        raise _fail(path, "tls_server_config.client_ca_file is set but client_auth_type is "
                    "NoClientCert: set client_auth_type too")
    if "Verify" in auth_type and not client_ca:
        raise _fail(path, f"client_auth_type {auth_type} needs client_ca_file")
    if auth_type == "RequestClientCert":
        client_ca = None  # Go never verifies what it requested; nothing to load

    allowed_sans = None
    if "client_allowed_sans" in tls:
        allowed_sans = frozenset(_string_list(path, "tls_server_config.client_allowed_sans",
                                              tls["client_allowed_sans"]))
        if auth_type not in ("RequireAndVerifyClientCert", *_UNVERIFIED_REQUIRED):
            raise _fail(path, "tls_server_config.client_allowed_sans needs client_auth_type "
                        "RequireAndVerifyClientCert or RequireAnyClientCert")

    ciphers = None
    if "cipher_suites" in tls:
        names = _string_list(path, "tls_server_config.cipher_suites", tls["cipher_suites"])
        for name in names:
            if name not in _CIPHER_SUITES and name not in _TLS13_SUITES:
                raise _fail(path, f"tls_server_config.cipher_suites: unknown or insecure "
                            f"cipher suite {name!r} (Go's crypto/tls CipherSuites() names)")
        ciphers = ":".join(_CIPHER_SUITES[n] for n in names if n in _CIPHER_SUITES) or None

    curve = None
    if "curve_preferences" in tls:
        names = _string_list(path, "tls_server_config.curve_preferences",
                             tls["curve_preferences"])
        for name in names:
            if name not in _CURVES:
                raise _fail(path, f"tls_server_config.curve_preferences: unknown curve "
                            f"{name!r} (one of {', '.join(_CURVES)})")
        if len(names) > 1:
            raise _fail(path, "tls_server_config.curve_preferences: Python's ssl module can "
                        "set one curve only: list exactly one")
        curve = _CURVES[names[0]] if names else None

    prefer = tls.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        raise _fail(path, "tls_server_config.prefer_server_cipher_suites must be true or false")

    return TLSSettings(
        cert_file=_resolve(path, tls["cert_file"]), key_file=_resolve(path, tls["key_file"]),
        client_ca_file=_resolve(path, client_ca) if client_ca else None,
        verify_mode=_CLIENT_AUTH[auth_type],
        accept_any_client_cert=auth_type in _UNVERIFIED_REQUIRED, min_version=min_version,
        max_version=max_version, ciphers=ciphers, curve=curve,
        prefer_server_cipher_suites=prefer, allowed_sans=allowed_sans)


def _http_headers(path: str, http: object) -> dict[str, str]:
    if not isinstance(http, dict):
        raise _fail(path, "http_server_config must be a mapping")
    unknown = set(http) - {"http2", "headers"}
    if unknown:
        raise _fail(path, f"unknown key http_server_config.{sorted(unknown)[0]}")
    if "http2" in http:
        if not isinstance(http["http2"], bool):
            raise _fail(path, "http_server_config.http2 must be true or false")
        if http["http2"]:
            raise _fail(path, "http_server_config.http2: ringwatch serves HTTP/1.1 only "
                        "(clients fall back to it): set it to false or remove it")
    headers = http.get("headers") or {}
    if not isinstance(headers, dict):
        raise _fail(path, "http_server_config.headers must be a mapping of header to value")
    for name, value in headers.items():
        if name not in _HEADERS:
            raise _fail(path, f"http_server_config.headers: {name!r} can not be configured "
                        f"(exporter-toolkit allows {', '.join(_HEADERS)})")
        allowed = _HEADERS[name]
        if not isinstance(value, str) or (allowed is not None and value not in allowed):
            expected = f"one of {', '.join(allowed)}" if allowed else "a string"
            raise _fail(path, f"http_server_config.headers.{name} must be {expected}")
    return dict(headers)


def load_web_config(path: str | None) -> WebConfig:
    """Parse and check the web config file; ConfigError (one line) on any problem."""
    if not path:
        return WebConfig()
    try:
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle) or {}
    except OSError as exc:
        raise _fail(path, f"cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise _fail(path, "not UTF-8 text") from None
    except yaml.YAMLError:
        raise _fail(path, "not valid YAML") from None
    if not isinstance(loaded, dict):
        raise _fail(path, "must be a mapping")
    unknown = set(loaded) - {"tls_server_config", "basic_auth_users", "http_server_config"}
    if unknown:
        raise _fail(path, f"unknown key {sorted(unknown)[0]}")
    config = WebConfig()
    if loaded.get("http_server_config") is not None:
        config.headers = _http_headers(path, loaded["http_server_config"])
    tls = loaded.get("tls_server_config")
    if tls is not None:
        if not isinstance(tls, dict):
            raise _fail(path, "tls_server_config must be a mapping")
        settings = _tls_settings(path, tls)
        try:
            config.tls = ReloadingTLS(settings)
        except ConfigError as exc:
            raise _fail(path, f"tls_server_config: {exc}") from None
    users = loaded.get("basic_auth_users")
    if users is not None:
        if not isinstance(users, dict) or not users:
            raise _fail(path, "basic_auth_users must be a mapping of user to bcrypt hash")
        parsed: dict[str, bytes] = {}
        for user, hashed in users.items():
            if not isinstance(hashed, str) or not _BCRYPT_HASH.match(hashed):
                raise _fail(path, f"basic_auth_users.{user} is not a bcrypt hash")
            parsed[str(user)] = hashed.encode()
        config.basic_auth = BasicAuth(parsed)
    return config
