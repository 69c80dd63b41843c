"""Use cases on signing keys: the current key for a purpose, rotation, the public set."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.audit import writing
from tongban.crypto.signing import Alg, PrivateKey, PublicKey, generate, load_private_pem
from tongban.crypto.signing import public_from_jwk as _public_from_jwk
from tongban.db import utcnow
from tongban.errors import NotFound
from tongban.kernel.node import settings_of
from tongban.keys.models import SigningKey

PURPOSES = ("licence", "node", "audit", "root")

_private_cache: dict[str, PrivateKey] = {}

log = logging.getLogger(__name__)

#: Called as fn(session, row, change) after one of this node's keys was created
#: ("created", also for the new key of a rotation: the old one is retired by then) or
#: withdrawn ("withdrawn"), in the caller's transaction. Imports are not changes.
KeyListener = Callable[[Session, SigningKey, str], None]
_listeners: list[KeyListener] = []
#: Modules whose import registers listeners; imported on the first change, so that a
#: change made by any entry point (e.g. `tongban keys rotate`) reaches them.
LISTENER_MODULES: tuple[str, ...] = ("tongban.licences.federation",)
_modules_loaded = False


def on_change(fn: KeyListener) -> KeyListener:
    """Register `fn` to hear of key changes (idempotent; usable as a decorator)."""
    if fn not in _listeners:
        _listeners.append(fn)
    return fn


def _notify(session: Session, row: SigningKey, change: str) -> None:
    global _modules_loaded
    if not _modules_loaded:
        _modules_loaded = True
        for name in LISTENER_MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a broken listener must not stop key changes
                log.exception("cannot import key listener module %s", name)
    for fn in list(_listeners):
        fn(session, row, change)


def _passphrase(session: Session) -> bytes | None:
    """TONGBAN_KEY_PASSPHRASE of the node whose session this is."""
    value = settings_of(session).key_passphrase
    return value.encode() if value else None


def default_alg(session: Session) -> Alg:
    """The suite new keys use (TONGBAN_SIGNATURE_ALG: EdDSA or SM2)."""
    return Alg(settings_of(session).signature_alg)


def _private(session: Session, row: SigningKey) -> PrivateKey:
    key = _private_cache.get(row.kid)
    if key is None:
        if row.private_pem is None:
            raise NotFound(f"密钥 {row.kid} 的私钥不在本节点")
        key = load_private_pem(row.private_pem, _passphrase(session))
        _private_cache[row.kid] = key
    return key


def create_key(
    session: Session, purpose: str, owner: str, alg: Alg | str | None = None
) -> SigningKey:
    """Generate and store a new key pair for (purpose, owner)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown key purpose {purpose}")
    key = generate(alg or default_alg(session))
    row = SigningKey(
        kid=key.kid,
        purpose=purpose,
        owner=owner,
        alg=str(key.alg),
        public_jwk=key.public().jwk(),
        private_pem=key.pem(_passphrase(session)),
    )
    session.add(row)
    session.flush()
    _private_cache[row.kid] = key
    _notify(session, row, "created")
    return row


def current_row(session: Session, purpose: str, owner: str) -> SigningKey | None:
    """The newest key of (purpose, owner) that still signs, if any."""
    return session.scalars(
        select(SigningKey)
        .where(
            SigningKey.purpose == purpose,
            SigningKey.owner == owner,
            SigningKey.retired_at.is_(None),
            SigningKey.private_pem.is_not(None),
        )
        .order_by(SigningKey.created_at.desc(), SigningKey.kid)
        .limit(1)
    ).first()


def signing_key(session: Session, purpose: str, owner: str) -> tuple[PrivateKey, SigningKey]:
    """The key that signs for (purpose, owner) now; generated on first use."""
    row = current_row(session, purpose, owner) or create_key(session, purpose, owner)
    return _private(session, row), row


def _key_state(row: SigningKey | None) -> dict[str, Any] | None:
    """What a change of a key replaced or became, for its audit entry (public data)."""
    if row is None:
        return None
    return {
        "kid": row.kid,
        "alg": row.alg,
        "retired_at": row.retired_at,
        "not_after": row.not_after,
    }


def _record_change(
    session: Session,
    what: str,
    subject: str,
    actor: str,
    before: Any,
    after: Any,
    reason: str | None,
) -> None:
    writing.record_change(session, what, subject, actor, before=before, after=after, reason=reason)


def rotate(
    session: Session,
    purpose: str,
    owner: str,
    alg: Alg | str | None = None,
    *,
    actor: str = "system",
    reason: str | None = None,
) -> SigningKey:
    """Retire the current key (it keeps verifying what it signed) and start a new one.
    The rotation is an entry of the audit chain ("change", key.rotated)."""
    old = current_row(session, purpose, owner)
    before = _key_state(old)
    if old is not None:
        old.retired_at = utcnow()
    row = create_key(session, purpose, owner, alg or (old.alg if old else None))
    _record_change(
        session,
        "key.rotated",
        f"keys:{purpose}:{owner}",
        actor,
        before,
        _key_state(row),
        reason,
    )
    return row


def withdraw(
    session: Session,
    kid: str,
    at: datetime | None = None,
    *,
    actor: str = "system",
    reason: str | None = None,
) -> SigningKey:
    """A compromised key: nothing it signed after `at` (default now) verifies. The
    withdrawal is an entry of the audit chain ("change", key.withdrawn)."""
    row = session.get(SigningKey, kid)
    if row is None:
        raise NotFound("密钥不存在")
    before = _key_state(row)
    row.not_after = at or utcnow()
    if row.retired_at is None:
        row.retired_at = row.not_after
    _record_change(
        session, "key.withdrawn", f"key:{row.kid}", actor, before, _key_state(row), reason
    )
    _notify(session, row, "withdrawn")
    return row


def public_rows(
    session: Session, purpose: str | None = None, owner: str | None = None
) -> list[SigningKey]:
    """Every key this node knows (its own and imported), oldest first."""
    q = select(SigningKey).order_by(SigningKey.created_at, SigningKey.kid)
    if purpose is not None:
        q = q.where(SigningKey.purpose == purpose)
    if owner is not None:
        q = q.where(SigningKey.owner == owner)
    return list(session.scalars(q))


def public_key(row: SigningKey) -> PublicKey:
    return _public_from_jwk(row.public_jwk)


def import_public(
    session: Session,
    purpose: str,
    owner: str,
    jwk: dict[str, Any],
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    retired_at: datetime | None = None,
) -> SigningKey:
    """Record another node's public key (from the trust list or the federation file)."""
    pub = _public_from_jwk(jwk)
    row = session.get(SigningKey, pub.kid)
    if row is None:
        row = SigningKey(
            kid=pub.kid,
            purpose=purpose,
            owner=owner,
            alg=str(pub.alg),
            public_jwk=pub.jwk(),
            private_pem=None,
        )
        session.add(row)
    before = None if row.created_at is None else _key_state(row)
    if not_before is not None:
        row.not_before = not_before
    row.not_after = not_after
    if retired_at is not None:
        row.retired_at = retired_at
    session.flush()
    after = _key_state(row)
    if before is not None and before != after:
        # A peer's key withdrawn or retired (trust list, federation file): in the chain.
        _record_change(
            session, "key.imported.changed", f"key:{row.kid}", "system", before, after, None
        )
    return row
