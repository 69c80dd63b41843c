"""The reference device: makes dynamic codes exactly as the resident's code page does
(static/card-code.js), for kiosks, tests and operators, so any client can be checked
against one implementation of docs/card-format.md.

A device is a key pair it made itself (ECDSA P-256 like WebCrypto, or Ed25519) and the
credential its holder's node issued for the public half. `enrol` registers the key
through the API (`POST /api/v1/me/card/credential`); `code(now)` signs a code for the
moment `now`. A device file keeps both (the private key as PKCS#8 PEM: protect it like
the phone that holds the browser's key)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tongban.card import codec
from tongban.card.codec import DeviceAlg
from tongban.crypto.signing import b64u, b64u_decode

ALG_NAMES = {"ES256": DeviceAlg.P256, "EdDSA": DeviceAlg.ED25519}


class DeviceError(Exception):
    """The device cannot do what was asked (no credential, enrolment refused …); the
    message is in Chinese."""


@dataclass
class Device:
    """A device key and, once enrolled, its credential."""

    alg: DeviceAlg
    key: Any  # cryptography's EllipticCurvePrivateKey or Ed25519PrivateKey
    credential: bytes | None = None

    @classmethod
    def generate(cls, alg: str = "ES256") -> Device:
        suite = ALG_NAMES.get(alg)
        if suite is None:
            raise DeviceError(f"不支持的设备密钥算法 {alg}（ES256 或 EdDSA）")
        if suite is DeviceAlg.P256:
            return cls(suite, ec.generate_private_key(ec.SECP256R1()))
        return cls(suite, Ed25519PrivateKey.generate())

    # -- the public half ----------------------------------------------------------------

    def public_jwk(self) -> dict[str, str]:
        if self.alg is DeviceAlg.ED25519:
            raw = self.key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            return {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
        nums = self.key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64u(nums.x.to_bytes(32, "big")),
            "y": b64u(nums.y.to_bytes(32, "big")),
        }

    def public_raw(self) -> bytes:
        """The public key as a credential carries it."""
        if self.alg is DeviceAlg.ED25519:
            return bytes(
                self.key.public_key().public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw
                )
            )
        return bytes(
            self.key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
            )
        )

    # -- codes --------------------------------------------------------------------------

    def sign(self, data: bytes) -> bytes:
        """A 64-byte signature: r || s for P-256 (as WebCrypto gives it), RFC 8032 for
        Ed25519."""
        if self.alg is DeviceAlg.ED25519:
            return bytes(self.key.sign(data))
        r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def credential_info(self) -> codec.Credential:
        if self.credential is None:
            raise DeviceError("本设备尚未登记，请先运行 tongban card enrol")
        return codec.decode_credential(self.credential)

    def code(self, now: int) -> bytes:
        """The code for the moment `now` (Unix seconds)."""
        cred = self.credential_info()
        if cred.device_key != self.public_raw():
            raise DeviceError("凭证不属于本设备的密钥")
        signature = self.sign(codec.code_signing_input(self.credential or b"", now))
        return (self.credential or b"") + now.to_bytes(codec.TIME_LEN, "big") + signature

    def qr_text(self, now: int) -> str:
        return codec.to_qr_text(self.code(now))

    # -- enrolment over the API ---------------------------------------------------------

    def enrol(
        self,
        base_url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        client: httpx.Client | None = None,
    ) -> dict[str, Any]:
        """Register this device's public key for the account (a bearer `token`, or one
        obtained with `username`/`password`) and keep the credential; the API's answer."""
        http = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=30)
        try:
            if token is None:
                r = http.post(
                    "/api/v1/auth/token", data={"username": username, "password": password}
                )
                if r.status_code != 200:
                    raise DeviceError(f"登录失败：{_detail(r)}")
                token = str(r.json()["access_token"])
            r = http.post(
                "/api/v1/me/card/credential",
                json={"jwk": self.public_jwk()},
                headers={"Authorization": f"Bearer {token}"},
            )
            if r.status_code != 200:
                raise DeviceError(f"登记失败：{_detail(r)}")
            body: dict[str, Any] = r.json()
        except httpx.HTTPError as e:
            raise DeviceError(f"无法连接 {base_url}：{e}") from e
        finally:
            if client is None:
                http.close()
        credential = b64u_decode(str(body["credential"]))
        if codec.decode_credential(credential).device_key != self.public_raw():
            raise DeviceError("节点返回的凭证不属于本设备的密钥")
        self.credential = credential
        return body

    # -- the device file ----------------------------------------------------------------

    def save(self, path: Path) -> None:
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        data = {
            "alg": codec.DEVICE_ALG_NAMES[self.alg],
            "private_key": pem,
            "credential": b64u(self.credential) if self.credential else None,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=2)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Device:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            alg = ALG_NAMES[data["alg"]]
            key = serialization.load_pem_private_key(data["private_key"].encode(), None)
            credential = b64u_decode(data["credential"]) if data.get("credential") else None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DeviceError(f"无法读取设备文件 {path}：{e}") from e
        return cls(alg, key, credential)


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail") or r.text)
    except ValueError:
        return f"HTTP {r.status_code}"
