"""`--web.config.file` in the Prometheus exporter-toolkit format.

Supported: `tls_server_config` (cert_file, key_file, client_auth_type,
client_ca_file, min_version, max_version) and `basic_auth_users` (bcrypt
hashes). A successful bcrypt check is cached by a keyed digest of the
credentials, so scrapes do not pay bcrypt's cost (~50-250 ms) every time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import ssl
from dataclasses import dataclass, field

import bcrypt
import yaml

from ringwatch.config import ConfigError

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version",
             "max_version", "cipher_suites", "prefer_server_cipher_suites", "curve_preferences",
             "client_allowed_sans", "cert", "key"}


@dataclass
class BasicAuth:
    users: dict[str, bytes]
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _verified: set[bytes] = field(default_factory=set)

    def check(self, user: str, password: str) -> bool:
        hashed = self.users.get(user)
        if hashed is None:
            return False
        digest = hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        if digest in self._verified:
            return True
        try:
            ok = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            return False
        if ok:
            if len(self._verified) > 1024:
                self._verified.clear()
            self._verified.add(digest)
        return ok


@dataclass
class WebConfig:
    ssl_context: ssl.SSLContext | None = None
    basic_auth: BasicAuth | None = None


def _fail(path: str, message: str) -> ConfigError:
    return ConfigError(f"--web.config.file={path}: {message}")


def _resolve(base: str, name: str) -> str:
    return name if os.path.isabs(name) else os.path.join(os.path.dirname(base), name)


def _tls_context(path: str, tls: dict) -> ssl.SSLContext:
    unknown = set(tls) - _TLS_KEYS
    if unknown:
        raise _fail(path, f"unknown key tls_server_config.{sorted(unknown)[0]}")
    if not tls.get("cert_file") or not tls.get("key_file"):
        raise _fail(path, "tls_server_config needs both cert_file and key_file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(_resolve(path, tls["cert_file"]), _resolve(path, tls["key_file"]))
    except (OSError, ssl.SSLError) as exc:
        raise _fail(path, f"cannot load cert_file/key_file: {exc}") from None
    for key, attr in (("min_version", "minimum_version"), ("max_version", "maximum_version")):
        if key in tls:
            version = _TLS_VERSIONS.get(str(tls[key]))
            if version is None:
                raise _fail(path, f"tls_server_config.{key}={tls[key]!r} is not one of "
                            f"{', '.join(_TLS_VERSIONS)}")
            setattr(context, attr, version)
    if "min_version" not in tls:
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    auth_type = tls.get("client_auth_type", "NoClientCert")
    if auth_type not in _CLIENT_AUTH:
        raise _fail(path, f"tls_server_config.client_auth_type={auth_type!r} is not one of "
                    f"{', '.join(_CLIENT_AUTH)}")
    context.verify_mode = _CLIENT_AUTH[auth_type]
    if "Verify" in auth_type:
        if not tls.get("client_ca_file"):
            raise _fail(path, f"client_auth_type {auth_type} needs client_ca_file")
        try:
            context.load_verify_locations(_resolve(path, tls["client_ca_file"]))
        except (OSError, ssl.SSLError) as exc:
            raise _fail(path, f"cannot load client_ca_file: {exc}") from None
    return context


def load_web_config(path: str | None) -> WebConfig:
    if not path:
        return WebConfig()
    try:
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle) or {}
    except OSError as exc:
        raise _fail(path, f"cannot read it: {exc.strerror}") from None
    except yaml.YAMLError:
        raise _fail(path, "not valid YAML") from None
    if not isinstance(loaded, dict):
        raise _fail(path, "must be a mapping")
    unknown = set(loaded) - {"tls_server_config", "basic_auth_users", "http_server_config"}
    if unknown:
        raise _fail(path, f"unknown key {sorted(unknown)[0]}")
    config = WebConfig()
    tls = loaded.get("tls_server_config")
    if tls is not None:
        if not isinstance(tls, dict):
            raise _fail(path, "tls_server_config must be a mapping")
        config.ssl_context = _tls_context(path, tls)
    users = loaded.get("basic_auth_users")
    if users is not None:
        if not isinstance(users, dict) or not users:
            raise _fail(path, "basic_auth_users must be a mapping of user to bcrypt hash")
        parsed: dict[str, bytes] = {}
        for user, hashed in users.items():
            if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
                raise _fail(path, f"basic_auth_users.{user} is not a bcrypt hash")
            parsed[str(user)] = hashed.encode()
        config.basic_auth = BasicAuth(parsed)
    return config
