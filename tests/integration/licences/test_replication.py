"""Licence keys and status lists as replicated states (kernel.replication.Published), on
both databases, received by node B (江苏/浙江) from node A (安徽) through the exchange's
inbox: a key set or a list is applied only when its sequence is newer than the one held
(a late one changes nothing, even when its content looks newer), a payload of schema
version 1 (no sequence) is still applied, and a schema version the type does not accept
is refused."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tongban.config import Settings
from tongban.crypto.signing import PrivateKey, generate
from tongban.exchange import service as exchange
from tongban.exchange.federation import Node
from tongban.exchange.transport import Envelope
from tongban.kernel.node import bind_settings
from tongban.keys.models import SigningKey
from tongban.licences import domain, federation, trust
from tongban.licences.federation_models import ForeignIssuer
from tongban.licences.models import StatusListToken
from tongban.licences.statuslist import INVALID, StatusList, sign_status_list

NODE_A = Node("node-a", "安徽", ("340000",), "https://ah.node.example")
ISSUER = "https://ah.node.example/issuers/340000"
URI = "https://ah.node.example/api/v1/status-lists/340000/7"


@pytest.fixture
def b(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session of node B, which serves 江苏 and 浙江 and issues nothing for 安徽."""
    node_b = Settings(secret_key="x", node_id="node-b", served_jurisdictions="320000,330000")
    with bind_settings(factory, node_b)() as session:
        yield session


def _receive(session: Session, msg_type: str, payload: dict[str, Any], version: int = 2) -> bool:
    env = Envelope(
        id=uuid.uuid4(),
        type=msg_type,
        source_node=NODE_A.id,
        source_jurisdiction="340000",
        target_jurisdiction="320000",
        created_at="2026-01-01T00:00:00+00:00",
        payload=payload,
        version=version,
    )
    return exchange.receive(session, env, NODE_A)


def _key_set(seq: int | None, *keys: PrivateKey, issuer: str = ISSUER) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "jurisdiction": "340000",
        "issuer": issuer,
        "keys": [
            {"jwk": k.public().jwk(), "not_before": "2020-01-01T00:00:00+00:00"} for k in keys
        ],
    }
    if seq is not None:
        payload["seq"] = seq
    return payload


def _list(seq: int, key: PrivateKey, *, iat: int, revoked: tuple[int, ...] = ()) -> dict[str, Any]:
    lst = StatusList(domain.STATUS_BITS, domain.STATUS_LIST_SIZE)
    for index in revoked:
        lst.set(index, INVALID)
    token = sign_status_list(
        lst.encode(), lst.bits, URI, key, iat=iat, exp=iat + 3600, ttl=300, iss=ISSUER
    )
    return {"jurisdiction": "340000", "list_no": 7, "uri": URI, "token": token, "seq": seq}


def test_a_late_older_key_set_is_ignored(b: Session) -> None:
    k1, k2, k3 = generate(), generate(), generate()
    assert _receive(b, federation.KEYS_PUBLISHED, _key_set(2, k1, k2))
    # The key set numbered 1 arrives late: another key, another issuer id. Neither is
    # taken (the inbox records it as received: it is not retried).
    assert _receive(b, federation.KEYS_PUBLISHED, _key_set(1, k1, k3, issuer=ISSUER + "x"))
    assert b.get(SigningKey, k1.kid) is not None and b.get(SigningKey, k2.kid) is not None
    assert b.get(SigningKey, k3.kid) is None
    known = b.get(ForeignIssuer, "340000")
    assert known is not None and known.issuer == ISSUER and known.node_id == "node-a"
    # A newer one is applied.
    assert _receive(b, federation.KEYS_PUBLISHED, _key_set(3, k1, k2, k3))
    assert b.get(SigningKey, k3.kid) is not None
    trust.invalidate()


def test_a_late_older_status_list_is_ignored_even_when_signed_later(b: Session) -> None:
    key = generate()
    assert _receive(b, federation.KEYS_PUBLISHED, _key_set(1, key))
    now = int(time.time())
    third = _list(3, key, iat=now - 60, revoked=(5,))
    second = _list(2, key, iat=now - 30)  # signed later, numbered earlier: a stale retry
    assert _receive(b, federation.STATUS_LIST_PUBLISHED, third)
    assert _receive(b, federation.STATUS_LIST_PUBLISHED, second)
    stored = b.get(StatusListToken, ("340000", 7))
    assert stored is not None and not stored.own
    assert stored.token == third["token"]
    # The list numbered 4 replaces it.
    fourth = _list(4, key, iat=now - 10)
    assert _receive(b, federation.STATUS_LIST_PUBLISHED, fourth)
    assert stored.token == fourth["token"]
    trust.invalidate()


def test_a_refused_status_list_does_not_move_the_sequence(b: Session) -> None:
    """A list that cannot be applied yet (its key has not arrived) is retried later: its
    sequence must still be newer then."""
    key = generate()
    now = int(time.time())
    early = _list(1, key, iat=now - 60)
    with pytest.raises(exchange.OutOfOrder), b.begin_nested():  # rolled back, as delivery does
        _receive(b, federation.STATUS_LIST_PUBLISHED, early)
    assert _receive(b, federation.KEYS_PUBLISHED, _key_set(1, key))
    assert _receive(b, federation.STATUS_LIST_PUBLISHED, early)  # the retry
    stored = b.get(StatusListToken, ("340000", 7))
    assert stored is not None and stored.token == early["token"]
    trust.invalidate()


def test_version_1_without_a_sequence_is_still_applied(b: Session) -> None:
    k1, k2 = generate(), generate()
    assert _receive(b, federation.KEYS_PUBLISHED, _key_set(5, k1))
    # A node that writes version 1 numbers nothing: its key set is applied as it comes
    # (retirement and withdrawal still only move earlier).
    assert _receive(b, federation.KEYS_PUBLISHED, _key_set(None, k1, k2), version=1)
    assert b.get(SigningKey, k2.kid) is not None
    trust.invalidate()


def test_an_unknown_schema_version_is_refused(b: Session) -> None:
    k1 = generate()
    with pytest.raises(exchange.Refused) as refused:
        _receive(b, federation.KEYS_PUBLISHED, _key_set(1, k1), version=3)
    assert refused.value.reason == "unknown-version"
    assert b.get(SigningKey, k1.kid) is None


def test_this_node_writes_version_2_with_a_sequence() -> None:
    assert exchange.version_for(federation.KEYS_PUBLISHED) == 2
    assert exchange.version_for(federation.STATUS_LIST_PUBLISHED) == 2
