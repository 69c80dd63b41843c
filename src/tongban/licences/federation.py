"""E-licences across nodes: what this node publishes to the other nodes of a federation.

A licence is verified with the trust list (its issuer's public keys) and its status list.
Each node holds both only for the jurisdictions it serves; so a node publishes, as
``kernel.replication.Published`` states (sent whole, newest wins):

- ``KEYS`` — ``licence.keys_published``: the public licence keys of a jurisdiction it
  serves (with their not-before / retired / withdrawn instants) and that jurisdiction's
  issuer id, whenever one of its keys is created, rotated or withdrawn;
- ``LISTS`` — ``licence.status_list_published``: a reference to one of its status lists,
  when the list is created and whenever a status in it changes; the signed
  ``statuslist+jwt`` is attached when the message leaves over HTTP (handlers.py's
  enricher), so every delivery, even a retried one, carries the list as it is then.

Each message carries ``seq``, the record's (key set's, list's) number from this node's
counter (schema version 2; a version-1 payload has none), and a receiver applies only a
newer one than it holds (handlers.py).

Changes are noted during the transaction with ``replication.publish_at_commit`` and the
messages written to the outbox when it commits, in the same transaction: one per key set
or list and recipient, however many changes, key sets before the lists signed with them.
There is one code path: the messages always go through the outbox. In a federation the
recipients are one jurisdiction of every other node; on the embedded single node (no
federation file) they are one jurisdiction this node serves other than the issuer's, the
message is delivered locally and the receiving handler finds the jurisdiction is this
node's own and changes nothing. The receiving side is handlers.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from tongban.config import Settings
from tongban.exchange import service as exchange
from tongban.kernel import replication
from tongban.kernel.node import settings_of
from tongban.keys import service as keys
from tongban.keys.models import SigningKey
from tongban.licences import domain
from tongban.licences.models import StatusListToken
from tongban.regions.models import Jurisdiction

log = logging.getLogger(__name__)

KEYS_PUBLISHED = "licence.keys_published"
STATUS_LIST_PUBLISHED = "licence.status_list_published"

#: The schema versions of both message types: 1 (no ``seq``, applied as it comes) and 2
#: (``seq``: applied only when newer); this node writes 2.
VERSIONS = frozenset({1, 2})

#: A jurisdiction's licence key set, numbered per jurisdiction.
KEYS = replication.Published(KEYS_PUBLISHED, scope=lambda p: f"licence.keys:{p['jurisdiction']}")
#: One status list of a jurisdiction, numbered per list.
LISTS = replication.Published(
    STATUS_LIST_PUBLISHED,
    scope=lambda p: f"licence.status_list:{p['jurisdiction']}:{p['list_no']}",
)

#: What a change publishes when its transaction commits: (source, recipients, payload).
Built = tuple[str, Sequence[str], dict[str, Any]]
Build = Callable[[Session], Built | None]


federated = replication.federated
targets = replication.other_nodes


def _serves(code: str, settings: Settings) -> bool:
    return exchange.serves(code, settings.served_jurisdictions)


def recipients(session: Session, code: str) -> list[str]:
    """Where jurisdiction `code`'s key set and status lists go
    (kernel.replication.holders_of_published)."""
    known = session.scalars(select(Jurisdiction.code))
    return replication.holders_of_published(settings_of(session), code, known)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def keys_payload(session: Session, code: str) -> dict[str, Any]:
    """The public licence keys of jurisdiction `code`, as `licence.keys_published`
    carries them (instants as ISO 8601, to the microsecond; `seq` is added when it is
    published)."""
    rows = keys.public_rows(session, "licence", code)
    return {
        "jurisdiction": code,
        "issuer": domain.issuer_id(settings_of(session).public_url, code),
        "keys": [
            {
                "jwk": keys.public_key(r).jwk(),
                "not_before": _iso(r.not_before),
                "retired_at": _iso(r.retired_at),
                "not_after": _iso(r.not_after),
            }
            for r in rows
        ],
    }


def _list_payload(session: Session, code: str, list_no: int) -> dict[str, Any] | None:
    """The reference to one of this node's own status lists, None if it has no such list."""
    row = session.get(StatusListToken, (code, list_no))
    if row is None or not row.own:
        return None
    return {"jurisdiction": code, "list_no": list_no, "uri": row.uri}


def publish_keys(session: Session, code: str, to: Sequence[str] | None = None) -> int:
    """Queue jurisdiction `code`'s licence keys for its recipients (`to`, by default
    `recipients`); how many messages."""
    to = recipients(session, code) if to is None else to
    return KEYS.publish(session, code, to, keys_payload(session, code))


def publish_list(session: Session, code: str, list_no: int, to: Sequence[str] | None = None) -> int:
    """Queue one of this node's status lists for its recipients (`to`, by default
    `recipients`); how many messages."""
    payload = _list_payload(session, code, list_no)
    if payload is None:
        return 0
    to = recipients(session, code) if to is None else to
    return LISTS.publish(session, code, to, payload)


def publish_all_lists(session: Session) -> int:
    """Queue every status list of the jurisdictions this node serves for every other node
    (the periodic refresh: a received list expires STATUS_LIST_LIFETIME after it was
    signed); how many messages. None on a node that is not federated: no other node
    holds a copy."""
    s = settings_of(session)
    to = targets(s)
    if not to:
        return 0
    lists = session.scalars(
        select(StatusListToken)
        .where(StatusListToken.own.is_(True))
        .order_by(StatusListToken.jurisdiction_code, StatusListToken.list_no)
    )
    return sum(
        publish_list(session, r.jurisdiction_code, r.list_no, to)
        for r in lists
        if _serves(r.jurisdiction_code, s)
    )


def publish_all(session: Session) -> tuple[int, int]:
    """Queue every licence key set and status list of the jurisdictions this node serves
    for every other node (a node that joined later, or after a lost message):
    (key-set messages, status-list messages); (0, 0) on a node that is not federated."""
    s = settings_of(session)
    to = targets(s)
    if not to:
        return 0, 0
    owners = sorted({r.owner for r in keys.public_rows(session, "licence") if _serves(r.owner, s)})
    n_keys = sum(publish_keys(session, code, to) for code in owners)
    return n_keys, publish_all_lists(session)


# --- noting changes during a transaction -------------------------------------------------
# Nothing here reads the node's settings: these run in any session (the before_flush
# listener in every one); what to send, and where, is decided when it commits.


def _keys_at_commit(code: str) -> Build:
    def build(session: Session) -> Built | None:
        if not _serves(code, settings_of(session)):
            return None
        return code, recipients(session, code), keys_payload(session, code)

    return build


def _list_at_commit(code: str, list_no: int) -> Build:
    def build(session: Session) -> Built | None:
        payload = _list_payload(session, code, list_no)  # None: e.g. rolled back
        if payload is None or not _serves(code, settings_of(session)):
            return None
        return code, recipients(session, code), payload

    return build


def keys_changed(session: Session, code: str) -> None:
    """A licence key of `code` changed: publish the key set when the transaction commits."""
    replication.publish_at_commit(session, KEYS, code, _keys_at_commit(code), rank=0)


def list_changed(session: Session, code: str, list_no: int) -> None:
    """A status in a list of `code` changed (or the list is new): publish it at commit,
    after the key sets (rank 1: a list verifies against them)."""
    replication.publish_at_commit(
        session, LISTS, (code, list_no), _list_at_commit(code, list_no), rank=1
    )


@keys.on_change
def _on_key_change(session: Session, row: SigningKey, change: str) -> None:
    if row.purpose == "licence" and row.private_pem is not None:
        keys_changed(session, row.owner)


@event.listens_for(Session, "before_flush")
def _new_lists(session: Session, _flush_context: Any, _instances: Any) -> None:
    # A status list is created with the first licence placed in it: the other nodes
    # need it (all valid) to answer for that licence. Only noted here (no flush inside a
    # flush, no settings: every session flushes through this): written at commit.
    for obj in session.new:
        if isinstance(obj, StatusListToken) and obj.own:
            list_changed(session, obj.jurisdiction_code, obj.list_no)


# --- the trust list of a federation ------------------------------------------------------


def trust_root_url(settings: Settings) -> str | None:
    """The base URL of the node that signs the federation trust list, when the
    federation file names one (`trust_root`) and it is not this node; None when this
    node signs its own (the root itself, the embedded single node, no `trust_root`)."""
    if settings.federation_file is None:
        return None
    fed = exchange.federation_for(settings)
    if fed.trust_root is None or fed.trust_root == settings.node_id:
        return None
    return fed.node(fed.trust_root).base_url.rstrip("/")
