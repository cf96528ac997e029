"""Test certificates made with `cryptography`: a CA, server and client certificates,
keys (optionally encrypted), and client SSLContexts trusting the CA."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key."""
    return ec.generate_private_key(ec.SECP256R1())


def issue_cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None = None,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
    ca: bool = False,
    server: bool = False,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    """A certificate for `subject`, self-signed unless an issuer is given; `server` adds
    the SAN IP 127.0.0.1, `sans` any SANs."""
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    names = list(sans or [])
    if server:
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def write_pem(
    path: Path,
    cert: x509.Certificate | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    passphrase: bytes | None = None,
) -> str:
    """Write a certificate or a key (encrypted with `passphrase` if given) as PEM."""
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        assert key is not None
        encryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            )
        )
    return str(path)


def make_pki(directory: Path) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as files."""
    ca_key = new_key()
    ca = issue_cert("ringwatch test CA", ca_key, ca=True)
    server_key, client_key = new_key(), new_key()
    server = issue_cert("127.0.0.1", server_key, ca.subject, ca_key, server=True)
    client = issue_cert(
        "prometheus", client_key, ca.subject, ca_key, sans=[x509.DNSName("prometheus.example")]
    )
    return {
        "ca": write_pem(directory / "ca.pem", ca),
        "cert": write_pem(directory / "server.pem", server),
        "key": write_pem(directory / "server-key.pem", key=server_key),
        "client_cert": write_pem(directory / "client.pem", client),
        "client_key": write_pem(directory / "client-key.pem", key=client_key),
    }


def client_context(
    pki: dict[str, str], with_cert: bool = False, max_version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    """A client context trusting the test CA, with the client certificate if asked."""
    context = ssl.create_default_context(cafile=pki["ca"])
    if with_cert:
        context.load_cert_chain(pki["client_cert"], pki["client_key"])
    if max_version is not None:
        context.maximum_version = max_version
    return context
