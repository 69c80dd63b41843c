"""Signing keys: generated on first use, rotated without breaking what they signed."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tongban.crypto.signing import Alg
from tongban.errors import NotFound
from tongban.keys import service as keys


def test_first_use_generates_one_key_then_reuses_it(session: Session) -> None:
    first, row = keys.signing_key(session, "licence", "999901")
    again, row2 = keys.signing_key(session, "licence", "999901")
    assert row.kid == row2.kid == first.kid == again.kid
    assert row.private_pem and "PRIVATE KEY" in row.private_pem
    assert [r.kid for r in keys.public_rows(session, "licence", "999901")] == [row.kid]


@pytest.mark.parametrize("alg", [Alg.EDDSA, Alg.SM2])
def test_rotation_keeps_old_key_verifying(session: Session, alg: Alg) -> None:
    old_priv, old = keys.signing_key(session, "node", "node-x")  # default suite
    keys.rotate(session, "node", "node-x", alg)
    new_priv, new = keys.signing_key(session, "node", "node-x")
    assert new.kid != old.kid and new.alg == str(alg)
    assert old.retired_at is not None and old.not_after is None
    # The retired key still verifies what it signed; the new one signs from now on.
    sig = old_priv.sign(b"before rotation")
    assert keys.public_key(old).verify(b"before rotation", sig)
    assert keys.public_key(new).verify(b"after", new_priv.sign(b"after"))
    assert {r.kid for r in keys.public_rows(session, "node", "node-x")} == {old.kid, new.kid}


def test_withdraw_sets_not_after_and_unknown_kid_is_not_found(session: Session) -> None:
    _, row = keys.signing_key(session, "audit", "node-y")
    keys.withdraw(session, row.kid)
    assert row.not_after is not None and row.retired_at is not None
    assert keys.current_row(session, "audit", "node-y") is None
    with pytest.raises(NotFound):
        keys.withdraw(session, "no-such-kid")


def test_import_public_stores_no_private_half(session: Session) -> None:
    from tongban.crypto.signing import generate

    foreign = generate(Alg.SM2)
    row = keys.import_public(session, "node", "other-node", foreign.public().jwk())
    assert row.private_pem is None and row.kid == foreign.kid
    # A foreign key never becomes this node's signing key.
    assert keys.current_row(session, "node", "other-node") is None
    assert keys.public_key(row).verify(b"m", foreign.sign(b"m"))


def test_unknown_purpose_refused(session: Session) -> None:
    with pytest.raises(ValueError):
        keys.create_key(session, "coffee", "x")
