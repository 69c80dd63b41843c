"""What the other nodes' gates need of this node's cards, published as kernel
replication states, and the uses of foreign cards sent to their holders' nodes.

- ``REVOCATIONS`` — ``card.revocations_published``: the signed revocation list of a
  jurisdiction this node serves (revocations.py), a ``replication.Published`` state
  (newest wins), sent when it changes (a card lost, found, replaced or cancelled, a
  device superseded: noted during the transaction, built and sent once when it commits)
  and re-sent by the periodic job before the copies expire. A node receiving it passes
  it on, unchanged, to its own gates (GET /api/v1/card/revocations/…): a gate of 杭州
  learns that a 南京 card is lost without ever talking to 南京's node.
- ``card.used`` — a use of a foreign card at one of this node's gates, sent once to the
  node of the card's jurisdiction (its holder's 用卡记录), see usage.py.

Recipients: one jurisdiction of every other node of the federation; on a node that is
not federated, one other jurisdiction it serves (delivered locally, where the handler
finds the list is its own and changes nothing): one code path, as for licences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.card.models import Card
from tongban.card.revocations import revocation_list
from tongban.crypto.signing import b64u
from tongban.exchange import service as exchange
from tongban.kernel import numbering, replication
from tongban.kernel.node import settings_of
from tongban.regions.models import Jurisdiction

REVOCATIONS_PUBLISHED = "card.revocations_published"
CARD_USED = "card.used"

#: A jurisdiction's card revocation list, numbered per jurisdiction.
REVOCATIONS = replication.Published(
    REVOCATIONS_PUBLISHED, scope=lambda p: f"card.revocations:{p['jurisdiction']}"
)


federated = replication.federated
targets = replication.other_nodes


def recipients(session: Session, code: str) -> list[str]:
    """Where jurisdiction `code`'s revocation list goes
    (kernel.replication.holders_of_published)."""
    known = session.scalars(select(Jurisdiction.code))
    return replication.holders_of_published(settings_of(session), code, known)


def revocations_payload(session: Session, code: str) -> dict[str, Any]:
    """`card.revocations_published` of jurisdiction `code`: the signed list as it is now
    (`seq` is added when it is published)."""
    return {"jurisdiction": code, "data": b64u(revocation_list(session, code).to_bytes())}


def _at_commit(code: str) -> Any:
    def build(session: Session) -> tuple[str, Sequence[str], dict[str, Any]] | None:
        if not exchange.serves(code, settings_of(session).served_jurisdictions):
            return None
        to = recipients(session, code)
        if not to:
            return None
        return code, to, revocations_payload(session, code)

    return build


def revocations_changed(session: Session, code: str) -> None:
    """The revocation list of jurisdiction `code` changed: its sequence moves
    (revocations.revocations_seq), and it is published to the other nodes when the
    transaction commits (once, however many changes it made)."""
    numbering.next_value(session, f"card.revocations:{code}", gapless=True)
    replication.publish_at_commit(session, REVOCATIONS, code, _at_commit(code), rank=2)


def publish_all(session: Session) -> int:
    """Queue the revocation list of every jurisdiction this node serves that has cards
    for every other node (the periodic refresh: a received list expires after
    REVOCATIONS_LIFETIME); how many messages. None on a node that is not federated."""
    s = settings_of(session)
    to = targets(s)
    if not to:
        return 0
    codes = session.scalars(select(Card.jurisdiction_code).distinct())
    n = 0
    for code in sorted(codes):
        if exchange.serves(code, s.served_jurisdictions):
            n += REVOCATIONS.publish(session, code, to, revocations_payload(session, code))
    return n
