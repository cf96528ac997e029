"""`--web.config.file` in the Prometheus exporter-toolkit format: read and checked.

Every key exporter-toolkit documents either behaves as it documents or is refused
at start with one line (exit 2); see the README's "Web config" section. What the
keys set up lives beside: TLS in `tls.py`, basic auth in `basicauth.py`.
"""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass, field
from typing import Any

from ringwatch.config import ConfigError, load_yaml_bounded
from ringwatch.serve.basicauth import BasicAuth, bcrypt_hash_problem
from ringwatch.serve.tls import (
    CIPHER_SUITES,
    CLIENT_AUTH,
    CURVES,
    TLS13_SUITES,
    TLS_VERSIONS,
    UNVERIFIED_REQUIRED,
    ReloadingTLS,
    TLSSettings,
)

_TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
    "client_allowed_sans",
    "cert",
    "key",
    "client_ca",
}
# The only headers exporter-toolkit lets a web config set, with the values it
# allows (None: any value).
_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
# What RFC 9110 forbids in a field value: control characters but HTAB (CR and LF
# would end the header; aiohttp refuses to send such a response at all).
_NOT_IN_HEADER_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


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


def _fail(path: str, message: str) -> ConfigError:
    return ConfigError(f"--web.config.file={path}: {message}")


def _resolve(base: str, name: str) -> str:
    return name if os.path.isabs(name) else os.path.join(os.path.dirname(base), name)


def _string_list(path: str, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, f"{key} must be a list of strings")
    return value


def _version(path: str, tls: dict[str, Any], key: str, default: ssl.TLSVersion) -> ssl.TLSVersion:
    if key not in tls:
        return default
    version = TLS_VERSIONS.get(str(tls[key]))
    if version is None:
        raise _fail(
            path, f"tls_server_config.{key}={tls[key]!r} is not one of {', '.join(TLS_VERSIONS)}"
        )
    return version


def _tls_settings(path: str, tls: dict[str, Any]) -> TLSSettings:
    unknown = set(tls) - _TLS_KEYS
    if unknown:
        raise _fail(path, f"unknown key tls_server_config.{sorted(unknown)[0]}")
    for inline in ("cert", "key", "client_ca"):
        if inline in tls:
            raise _fail(
                path, f"tls_server_config.{inline} (inline PEM) is not supported: use {inline}_file"
            )
    for key in ("cert_file", "key_file", "client_ca_file", "client_auth_type"):
        if key in tls and not isinstance(tls[key], str):
            raise _fail(path, f"tls_server_config.{key} must be a string")
    if not tls.get("cert_file") or not tls.get("key_file"):
        raise _fail(path, "tls_server_config needs both cert_file and key_file")
    min_version = _version(path, tls, "min_version", ssl.TLSVersion.TLSv1_2)
    max_version = _version(path, tls, "max_version", ssl.TLSVersion.TLSv1_3)
    if min_version > max_version:
        raise _fail(
            path,
            f"tls_server_config.min_version {tls['min_version']} is above "
            f"max_version {tls['max_version']}: no handshake could succeed",
        )

    auth_type = tls.get("client_auth_type") or "NoClientCert"
    if auth_type in UNVERIFIED_REQUIRED:
        raise _fail(
            path,
            f"tls_server_config.client_auth_type {auth_type} (require a client "
            "certificate, verify nothing) cannot be set up with Python's ssl module: "
            "use RequireAndVerifyClientCert with client_ca_file",
        )
    if auth_type not in CLIENT_AUTH:
        raise _fail(
            path,
            f"tls_server_config.client_auth_type={auth_type!r} is not one of "
            f"{', '.join(CLIENT_AUTH)}",
        )
    client_ca = tls.get("client_ca_file")
    if client_ca and auth_type == "NoClientCert":
        raise _fail(
            path,
            "tls_server_config.client_ca_file is set but client_auth_type is "
            "NoClientCert: set client_auth_type too",
        )
    if "Verify" in auth_type and not client_ca:
        raise _fail(path, f"client_auth_type {auth_type} needs client_ca_file")
    if auth_type == "RequestClientCert":
        client_ca = None  # Go never verifies what it requested; nothing to load

    allowed_sans = None
    if "client_allowed_sans" in tls:
        allowed_sans = frozenset(
            _string_list(path, "tls_server_config.client_allowed_sans", tls["client_allowed_sans"])
        )
        if auth_type != "RequireAndVerifyClientCert":
            raise _fail(
                path,
                "tls_server_config.client_allowed_sans needs client_auth_type "
                "RequireAndVerifyClientCert",
            )

    ciphers = None
    if "cipher_suites" in tls:
        names = _string_list(path, "tls_server_config.cipher_suites", tls["cipher_suites"])
        for name in names:
            if name not in CIPHER_SUITES and name not in TLS13_SUITES:
                raise _fail(
                    path,
                    f"tls_server_config.cipher_suites: unknown or insecure "
                    f"cipher suite {name!r} (Go's crypto/tls CipherSuites() names)",
                )
        ciphers = ":".join(CIPHER_SUITES[n] for n in names if n in CIPHER_SUITES) or None

    curve = None
    if "curve_preferences" in tls:
        names = _string_list(path, "tls_server_config.curve_preferences", tls["curve_preferences"])
        for name in names:
            if name not in CURVES:
                raise _fail(
                    path,
                    f"tls_server_config.curve_preferences: unknown curve "
                    f"{name!r} (one of {', '.join(CURVES)})",
                )
        if len(names) > 1:
            raise _fail(
                path,
                "tls_server_config.curve_preferences: Python's ssl module can "
                "set one curve only: list exactly one",
            )
        curve = CURVES[names[0]] if names else None

    prefer = tls.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        raise _fail(path, "tls_server_config.prefer_server_cipher_suites must be true or false")

    return TLSSettings(
        cert_file=_resolve(path, tls["cert_file"]),
        key_file=_resolve(path, tls["key_file"]),
        client_ca_file=_resolve(path, client_ca) if client_ca else None,
        verify_mode=CLIENT_AUTH[auth_type],
        min_version=min_version,
        max_version=max_version,
        ciphers=ciphers,
        curve=curve,
        prefer_server_cipher_suites=prefer,
        allowed_sans=allowed_sans,
    )


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
            raise _fail(
                path,
                "http_server_config.http2: ringwatch serves HTTP/1.1 only "
                "(clients fall back to it): set it to false or remove it",
            )
    headers = http.get("headers") or {}
    if not isinstance(headers, dict):
        raise _fail(path, "http_server_config.headers must be a mapping of header to value")
    for name, value in headers.items():
        if name not in _HEADERS:
            raise _fail(
                path,
                f"http_server_config.headers: {name!r} can not be configured "
                f"(exporter-toolkit allows {', '.join(_HEADERS)})",
            )
        allowed = _HEADERS[name]
        if not isinstance(value, str) or (allowed is not None and value not in allowed):
            expected = f"one of {', '.join(allowed)}" if allowed else "a string"
            raise _fail(path, f"http_server_config.headers.{name} must be {expected}")
        if _NOT_IN_HEADER_VALUE.search(value):
            raise _fail(
                path,
                f"http_server_config.headers.{name} contains a control "
                "character (CR, LF or another): not allowed in a header value",
            )
    return dict(headers)


def load_web_config(path: str | None) -> WebConfig:
    """Parse and check the web config file; ConfigError (one line) on any problem."""
    if not path:
        return WebConfig()
    loaded = load_yaml_bounded(path, "--web.config.file") or {}
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
            problem = (
                bcrypt_hash_problem(hashed)
                if isinstance(hashed, str)
                else "is not a bcrypt hash (not a string)"
            )
            if problem:
                raise _fail(path, f"basic_auth_users.{user} {problem}")
            parsed[str(user)] = hashed.encode()
        config.basic_auth = BasicAuth(parsed)
    return config
