"""A throwaway certificate authority (openssl) and a redis-server that speaks TLS only."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tests.redis_process import RedisServer, free_port

OPENSSL = shutil.which("openssl")
OPENSSL_MISSING = "openssl not found (apt-get install -y openssl); make test installs it"


def _openssl(*args: str | Path, cwd: Path) -> None:
    assert OPENSSL is not None, OPENSSL_MISSING
    subprocess.run([OPENSSL, *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=30)


@dataclass(frozen=True)
class Certificates:
    """PEM files: a CA, a server certificate for 127.0.0.1 and localhost, a client certificate,
    and a second CA that signed none of them."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _key_and_request(directory: Path, name: str, subject: str) -> None:
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=directory)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=directory)


def _self_signed_ca(directory: Path, name: str) -> Path:
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=directory)
    _openssl(
        "req", "-x509", "-new", "-key", f"{name}.key", "-days", "2", "-subj", f"/CN=redis-xcom test {name}",
        "-out", f"{name}.crt", cwd=directory,
    )  # fmt: skip
    return directory / f"{name}.crt"


def _sign(directory: Path, name: str, extensions: str) -> None:
    (directory / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=directory,
    )  # fmt: skip


def make_certificates(directory: Path) -> Certificates:
    """Takes well under a second: elliptic-curve keys."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _self_signed_ca(directory, "ca")
    other_ca = _self_signed_ca(directory, "other-ca")
    _key_and_request(directory, "server", "/CN=localhost")
    _sign(directory, "server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _key_and_request(directory, "client", "/CN=redis-xcom test client")
    _sign(directory, "client", "extendedKeyUsage=clientAuth\n")
    return Certificates(
        ca,
        directory / "server.crt",
        directory / "server.key",
        directory / "client.crt",
        directory / "client.key",
        other_ca,
    )


class TLSRedisServer(RedisServer):
    """redis-server with TLS on its only port (the plain port is off); client certificates are
    required when require_client_cert."""

    def __init__(self, certs: Certificates, require_client_cert: bool = False) -> None:
        self.certs = certs
        tls_port = free_port()
        # RedisServer's "--port" comes first; ours (0: no plain port) follows it and wins.
        args = [
            "--port", "0",
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(certs.server_cert),
            "--tls-key-file", str(certs.server_key),
            "--tls-ca-cert-file", str(certs.ca),
            "--tls-auth-clients", "yes" if require_client_cert else "no",
        ]  # fmt: skip
        super().__init__(args, port=tls_port)

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(
            port=self.port,
            ssl=True,
            ssl_ca_certs=str(self.certs.ca),
            ssl_certfile=str(self.certs.client_cert),
            ssl_keyfile=str(self.certs.client_key),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
            **kwargs,
        )
