"""A real OpenID Provider (tests/integration/identity/oidc_op.py: IdentityPython's pyop
over HTTPS) started once per test process on 127.0.0.1, and settings that make this
node a relying party of it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tongban.config import OidcProvider, Settings
from tongban.devserver import free_port

from builders import id_number

REDIRECT = "http://testserver/login/oidc/zjzwfw/callback"
OTHER_REDIRECT = "https://other.example/callback"


@dataclass(frozen=True)
class OP:
    issuer: str
    ca_file: str
    #: username -> (password, ID number, subject)
    users: dict[str, tuple[str, str, str]]
    redirect: str = REDIRECT
    other_redirect: str = OTHER_REDIRECT

    def provider(self, **kw: object) -> OidcProvider:
        values: dict[str, object] = {
            "name": "zjzwfw",
            "label": "浙里办",
            "issuer": self.issuer,
            "client_id": "tongban",
            "client_secret": "tongban-secret",
            "redirect_url": REDIRECT,
            "ca_file": self.ca_file,
        }
        values.update(kw)
        return OidcProvider.model_validate(values)


def _tls(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tongban test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "op.pem", directory / "op.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


@pytest.fixture(scope="session")
def oidc_op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OP]:
    directory = tmp_path_factory.mktemp("oidc-op")
    ca_file, cert_file, key_file = _tls(directory)
    port = free_port()
    issuer = f"https://127.0.0.1:{port}"
    users = {
        f"person{i}": (f"op-password-{i}", id_number("330100"), f"zj-sub-{i}") for i in range(6)
    }
    config = {
        "issuer": issuer,
        "port": port,
        "certfile": str(cert_file),
        "keyfile": str(key_file),
        "clients": {
            "tongban": {"client_secret": "tongban-secret", "redirect_uris": [REDIRECT]},
            # Another relying party of the same provider: its ID tokens are not for us.
            "other-rp": {"client_secret": "other-secret", "redirect_uris": [OTHER_REDIRECT]},
        },
        "users": {
            name: {
                "password": pw,
                "claims": {"sub": sub, "name": f"核验用户{name[-1]}", "id_number": ident},
            }
            for name, (pw, ident, sub) in users.items()
        },
    }
    log = (directory / "op.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("oidc_op.py"))],
        env={**os.environ, "OIDC_OP_CONFIG": json.dumps(config)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    "the OpenID Provider exited:\n" + (directory / "op.log").read_text()
                )
            try:
                if httpx.get(issuer + "/healthz", verify=_ctx(ca_file), timeout=2).is_success:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the OpenID Provider did not start in 60 s")
            time.sleep(0.1)
        yield OP(issuer=issuer, ca_file=str(ca_file), users=users)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _ctx(ca_file: Path) -> object:
    import ssl

    return ssl.create_default_context(cafile=str(ca_file))


@pytest.fixture
def oidc_settings(settings: Settings, oidc_op: OP) -> Settings:
    """The test app's settings with the provider configured (request it before `client`)."""
    settings.oidc_providers = [oidc_op.provider()]
    return settings
