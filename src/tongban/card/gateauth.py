"""How a gate proves itself to its node: each request it makes (uploading its uses, asking
for the codes other gates of its operator admitted) carries

    X-Gate-Signature: <gate id>.<Unix time>.<base64url Ed25519 signature>

over ``"tongban/card/gate/1\\0" || METHOD "\\n" || path and query "\\n" || time "\\n" ||
body``, made with the key the gate generated (`tongban gate init`) and the node's
operator registered (`tongban gate register`). A request older or newer than
`MAX_SKEW` seconds is refused, so a captured one is worth little (and an upload is
idempotent anyway)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from tongban.card.benefits import BadRules, venue
from tongban.card.models import CardGate
from tongban.crypto.signing import (
    Alg,
    KeyError_,
    PrivateKey,
    b64u,
    b64u_decode,
    public_from_jwk,
)
from tongban.db import utcnow
from tongban.errors import NotAuthenticated, PermissionDenied, ValidationFailed
from tongban.identity.domain import Role
from tongban.identity.models import Account

HEADER = "X-Gate-Signature"
PREFIX = b"tongban/card/gate/1\x00"
MAX_SKEW = 300


def signing_input(method: str, target: str, at: int, body: bytes) -> bytes:
    return PREFIX + f"{method.upper()}\n{target}\n{at}\n".encode() + body


def sign_request(key: PrivateKey, gate_id: str, method: str, target: str, body: bytes) -> str:
    """The header value a gate sends (`target`: the path and query it requests)."""
    at = int(time.time())
    return f"{gate_id}.{at}.{b64u(key.sign(signing_input(method, target, at, body)))}"


def _refused(detail: str) -> NotAuthenticated:
    return NotAuthenticated(detail, type="gate-unauthenticated")


def authenticate(
    session: Session, header: str | None, method: str, target: str, body: bytes
) -> CardGate:
    """The registered gate that signed this request; NotAuthenticated (401) otherwise."""
    if not header:
        raise _refused(f"缺少 {HEADER}")
    parts = header.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise _refused(f"{HEADER} 格式错误")
    gate_id, at_text, sig_text = parts
    gate = session.get(CardGate, gate_id)
    if gate is None or gate.revoked_at is not None:
        raise _refused("闸机未登记或已停用")
    at = int(at_text)
    if abs(at - int(time.time())) > MAX_SKEW:
        raise _refused("请求时间与本节点相差过大，请校准闸机时钟")
    try:
        signature = b64u_decode(sig_text)
        key = public_from_jwk(gate.public_jwk)
    except (ValueError, KeyError_):
        raise _refused("签名无法读取") from None
    if not key.verify(signing_input(method, target, at, body), signature):
        raise _refused("闸机签名无效")
    return gate


def register(
    session: Session,
    gate_id: str,
    venue_code: str,
    public_jwk: Mapping[str, object],
    by: Account | None = None,
) -> CardGate:
    """Allow a gate at a venue to upload (re-registering replaces its key). Only the
    node's administrator (or the node's own CLI, `by=None`)."""
    if by is not None and by.role != Role.ADMIN.value:
        raise PermissionDenied("仅平台管理员可登记闸机")
    if not gate_id or len(gate_id) > 64 or not all(c.isalnum() or c in "-_" for c in gate_id):
        raise ValidationFailed(
            "闸机编号只能包含字母、数字、- 和 _（至多 64 个字符）",
            errors=[{"field": "gate_id", "message": "闸机编号无效"}],
        )
    try:
        venue(venue_code)
    except BadRules as e:
        raise ValidationFailed(str(e), errors=[{"field": "venue_code", "message": str(e)}]) from e
    try:
        key = public_from_jwk(dict(public_jwk))
    except KeyError_ as e:
        raise ValidationFailed(
            "闸机公钥无效（须为 Ed25519 公钥）",
            errors=[{"field": "public_jwk", "message": str(e)}],
        ) from e
    if key.alg is not Alg.EDDSA:
        raise ValidationFailed(
            "闸机公钥须为 Ed25519", errors=[{"field": "public_jwk", "message": "须为 Ed25519"}]
        )
    gate = session.get(CardGate, gate_id)
    if gate is None:
        gate = CardGate(gate_id=gate_id)
        session.add(gate)
    gate.venue_code = venue_code
    gate.public_jwk = {k: v for k, v in key.jwk().items() if k in ("kty", "crv", "x")}
    gate.registered_at = utcnow()
    gate.registered_by = by.id if by is not None else None
    gate.revoked_at = None
    session.flush()
    return gate


def revoke(session: Session, gate_id: str, at: datetime | None = None) -> CardGate:
    gate = session.get(CardGate, gate_id)
    if gate is None:
        raise ValidationFailed("闸机未登记", errors=[{"field": "gate_id", "message": "未登记"}])
    gate.revoked_at = at or utcnow()
    session.flush()
    return gate
