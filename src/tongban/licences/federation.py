"""E-licences across nodes: what this node publishes to the other nodes of a federation.

A licence is verified with the trust list (its issuer's public keys) and its status list.
Each node holds both only for the jurisdictions it serves; so, in a federation, a node
sends to every other node

- ``licence.keys_published`` — the public licence keys of a jurisdiction it serves (with
  their not-before / retired / withdrawn instants) and that jurisdiction's issuer id,
  whenever one of its keys is created, rotated or withdrawn;
- ``licence.status_list_published`` — a reference to one of its status lists, when the
  list is created and whenever a status in it changes; the signed ``statuslist+jwt`` is
  attached when the message leaves (handlers.py's enricher), so every delivery, even a
  retried one, carries the list as it is then.

Changes are collected during the transaction and the messages written to the outbox when
it commits (one per jurisdiction or list and receiving node, however many changes), in
the same transaction. The embedded single node (no federation file) serves every
jurisdiction and sends nothing. The receiving side is handlers.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from tongban.config import Settings
from tongban.kernel.node import settings_of
from tongban.keys import service as keys
from tongban.keys.models import SigningKey
from tongban.licences import domain
from tongban.licences.models import StatusListToken

log = logging.getLogger(__name__)

KEYS_PUBLISHED = "licence.keys_published"
STATUS_LIST_PUBLISHED = "licence.status_list_published"

_PENDING = "tongban.licences.federation"


@dataclass
class _Pending:
    keys: set[str] = field(default_factory=set)
    lists: set[tuple[str, int]] = field(default_factory=set)


def federated(settings: Settings) -> bool:
    """Whether this node is one of several (a federation file, not serving '*')."""
    s = settings
    return s.federation_file is not None and s.served_jurisdictions.strip() != "*"


def _serves(code: str, settings: Settings) -> bool:
    from tongban.exchange import service as exchange

    return exchange.serves(code, settings.served_jurisdictions)


def targets(settings: Settings) -> list[str]:
    """One jurisdiction of every other node of the federation (the message is applied
    once per node; which of its jurisdictions carries it does not matter)."""
    from tongban.exchange import service as exchange

    s = settings
    if not federated(s):
        return []
    out = []
    for node in exchange.federation_for(s).nodes.values():
        if node.id == s.node_id:
            continue
        code = next((j for j in node.jurisdictions if j != "*" and not _serves(j, s)), None)
        if code is not None:
            out.append(code)
    return sorted(out)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def keys_payload(session: Session, code: str) -> dict[str, Any]:
    """The public licence keys of jurisdiction `code`, as `licence.keys_published`
    carries them (instants as ISO 8601, to the microsecond)."""
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


def publish_keys(session: Session, code: str, to: list[str] | None = None) -> int:
    """Queue jurisdiction `code`'s licence keys for every other node; how many messages."""
    from tongban.exchange import service as exchange

    to = targets(settings_of(session)) if to is None else to
    payload = keys_payload(session, code)
    for target in to:
        exchange.send(session, KEYS_PUBLISHED, code, target, payload)
    return len(to)


def publish_list(session: Session, code: str, list_no: int, to: list[str] | None = None) -> int:
    """Queue one of this node's status lists for every other node; how many messages."""
    from tongban.exchange import service as exchange

    row = session.get(StatusListToken, (code, list_no))
    if row is None or not row.own:
        return 0
    to = targets(settings_of(session)) if to is None else to
    for target in to:
        exchange.send(
            session,
            STATUS_LIST_PUBLISHED,
            code,
            target,
            {"jurisdiction": code, "list_no": list_no, "uri": row.uri},
        )
    return len(to)


def publish_all_lists(session: Session) -> int:
    """Queue every status list of the jurisdictions this node serves for every other node
    (the periodic refresh: a received list expires STATUS_LIST_LIFETIME after it was
    signed); how many messages."""
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
    (key-set messages, status-list messages)."""
    s = settings_of(session)
    to = targets(s)
    if not to:
        return 0, 0
    owners = sorted({r.owner for r in keys.public_rows(session, "licence") if _serves(r.owner, s)})
    n_keys = sum(publish_keys(session, code, to) for code in owners)
    return n_keys, publish_all_lists(session)


# --- collecting changes during a transaction ------------------------------------------


def _pending(session: Session) -> _Pending:
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = _Pending()
    return pending


def keys_changed(session: Session, code: str) -> None:
    """A licence key of `code` changed: publish the key set when the transaction commits."""
    s = settings_of(session)
    if federated(s) and _serves(code, s):
        _pending(session).keys.add(code)


def list_changed(session: Session, code: str, list_no: int) -> None:
    """A status in a list of `code` changed (or the list is new): publish it at commit."""
    s = settings_of(session)
    if federated(s) and _serves(code, s):
        _pending(session).lists.add((code, list_no))


@keys.on_change
def _on_key_change(session: Session, row: SigningKey, change: str) -> None:
    if row.purpose == "licence" and row.private_pem is not None:
        keys_changed(session, row.owner)


@event.listens_for(Session, "before_flush")
def _new_lists(session: Session, _flush_context: Any, _instances: Any) -> None:
    # A status list is created with the first licence placed in it: the other nodes
    # need it (all valid) to answer for that licence. Only noted here: no flush inside
    # a flush; the message is written at commit.
    if settings_of(session).federation_file is None:
        return
    for obj in session.new:
        if isinstance(obj, StatusListToken) and obj.own:
            list_changed(session, obj.jurisdiction_code, obj.list_no)


@event.listens_for(Session, "before_commit")
def _publish_pending(session: Session) -> None:
    pending: _Pending | None = session.info.pop(_PENDING, None)
    if pending is None or not (pending.keys or pending.lists):
        return
    to = targets(settings_of(session))
    if not to:
        return
    for code in sorted(pending.keys):  # keys first: a list verifies against them
        publish_keys(session, code, to)
    for code, list_no in sorted(pending.lists):
        publish_list(session, code, list_no, to)


@event.listens_for(Session, "after_rollback")
def _forget_pending(session: Session) -> None:
    if not session.in_transaction():
        session.info.pop(_PENDING, None)


# --- the trust list of a federation ------------------------------------------------------


def trust_root_url(settings: Settings) -> str | None:
    """The base URL of the node that signs the federation trust list, when the
    federation file names one (`trust_root`) and it is not this node; None when this
    node signs its own (the root itself, the embedded single node, no `trust_root`)."""
    from tongban.exchange import service as exchange

    if settings.federation_file is None:
        return None
    fed = exchange.federation_for(settings)
    if fed.trust_root is None or fed.trust_root == settings.node_id:
        return None
    return fed.node(fed.trust_root).base_url.rstrip("/")
