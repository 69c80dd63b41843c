"""Holder device keys (持有人设备密钥): a resident's or enterprise's device registers the
public half of a key it made and keeps (the browser wallet: WebCrypto, non-extractable,
in IndexedDB; an app: its platform key store). Their licences are then re-issued with
the key in `cnf.jwk`, and a presentation proves it comes from that device with a KB-JWT
(keybinding.py). The node never sees a private key."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.crypto.signing import KeyError_, holder_alg, holder_key_from_jwk
from tongban.db import utcnow
from tongban.errors import NotFound, ValidationFailed
from tongban.exchange import service as _exchange
from tongban.identity.models import Account
from tongban.licences import issuing, wallet
from tongban.licences.domain import LicenceStatus
from tongban.licences.models import HolderKey, Licence

#: A holder keeps a few devices at most; more is a client gone wrong.
MAX_ACTIVE_KEYS = 5


def list_keys(session: Session, actor: Account) -> list[HolderKey]:
    """The holder's device keys, newest first (withdrawn ones included)."""
    wallet._require_holder(actor)
    return list(
        session.scalars(
            select(HolderKey)
            .where(HolderKey.account_id == actor.id)
            .order_by(HolderKey.created_at.desc(), HolderKey.id)
        )
    )


def current_key(session: Session, actor: Account) -> HolderKey | None:
    """The key new licences are bound to: the newest one not withdrawn."""
    return next((k for k in list_keys(session, actor) if k.revoked_at is None), None)


def _bad_key(message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": "jwk", "message": message}])


def register_key(
    session: Session, actor: Account, jwk: object, label: str = ""
) -> tuple[HolderKey, list[Licence]]:
    """Register the public JWK of the holder's device (EC P-256 / ES256 or Ed25519;
    public members only) as their current key, and re-issue their licences bound to it.
    Registering the current key again changes nothing. Returns the key and the licences
    re-issued."""
    keys = list_keys(session, actor)
    try:
        public = holder_key_from_jwk(jwk)
    except KeyError_:
        raise _bad_key("设备公钥无效（须为 P-256 或 Ed25519 公钥，且不得包含私钥）") from None
    row = next((k for k in keys if k.thumbprint == public.kid), None)
    if row is not None and row.revoked_at is not None:
        raise _bad_key("该设备密钥已停用，请在设备上重新生成密钥")
    if row is None:
        if sum(1 for k in keys if k.revoked_at is None) >= MAX_ACTIVE_KEYS:
            raise _bad_key(f"最多可登记 {MAX_ACTIVE_KEYS} 个设备密钥，请先停用不用的设备")
        row = HolderKey(
            account_id=actor.id,
            jwk=public.jwk(),
            thumbprint=public.kid,
            alg=holder_alg(public),
            label=" ".join(label.split())[:80],
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
    elif keys and keys[0].id != row.id:
        row.created_at = utcnow()  # an older device registered again becomes the current one
        session.flush()
    return row, rebind(session, actor)


def withdraw_key(session: Session, actor: Account, key_id: uuid.UUID) -> list[Licence]:
    """Withdraw one of the holder's device keys (device lost or replaced): licences bound
    to it are re-issued bound to the next current key, or unbound when none is left.
    Returns the licences re-issued."""
    row = next((k for k in list_keys(session, actor) if k.id == key_id), None)
    if row is None:
        raise NotFound("设备密钥不存在", type="unknown-holder-key")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return rebind(session, actor)


def rebind(session: Session, actor: Account) -> list[Licence]:
    """Re-issue every licence of the holder that is not revoked and not yet bound to
    their current device key (bound to none when they have none)."""
    key = current_key(session, actor)
    want = key.thumbprint if key is not None else None
    done = []
    for lic in wallet.list_mine(session, actor):
        if lic.status == LicenceStatus.REVOKED.value or lic.cnf_kid == want:
            continue
        if not _exchange.serves_here(session, lic.jurisdiction_code):
            continue  # only the node of the licence's jurisdiction holds its signing key
        if lic.holder_account_id is None:  # issued from a register before the account
            lic.holder_account_id = actor.id
        note = f"绑定持有人设备密钥 {want[:12]}…" if want else "持有人设备密钥已停用，取消绑定"
        done.append(issuing.resign(session, lic, actor, note))
    return done
