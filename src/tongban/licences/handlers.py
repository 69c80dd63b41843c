"""E-licences across nodes: the receiving side of federation.py's messages, and the
enricher that attaches the signed status list when one leaves this node.

Each message is a ``kernel.replication.Published`` state: parsed into its schema
(versions 1 and 2, see federation.VERSIONS), its sender's right checked in one place
(`authorise_issuer`: only the node issuing for a jurisdiction publishes its keys and
lists), then applied only when its ``seq`` is newer than the one this node applied for
that key set or list (a late, replayed or older one changes nothing; a version-1 payload
has no ``seq`` and is applied). The receivers keep their own safety too (defence in
depth): retirement and withdrawal of a key only ever move earlier, and a status list
older (``iat``) than the one held is ignored.

On one node the message comes back to this node (federation.recipients): a message this
node sent about a jurisdiction it serves itself is its own state and changes nothing. The
same message from another node is refused (``not-allowed``).

Both handlers refuse (raise) rather than drop what they cannot accept, so that the
message is retried and, if it never becomes acceptable, parked as a dead letter on the
sending node where an operator sees it (`tongban exchange dead-letters`):

- a status list signed by no key this node knows yet raises OutOfOrder (409): the key
  set of that jurisdiction may still be on its way, so it is retried with back-off;
- a payload that does not match its schema, a schema version other than 1 or 2, or a
  message about a jurisdiction the sending node does not serve (or that this node
  issues for itself) is refused by the exchange before the handler runs (4xx): dead at
  once;
- a list not signed by the key of its own jurisdiction's issuer, a bad signature or an
  expired list raises an error (500): retried, then dead.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints
from sqlalchemy.orm import Session

from tongban.config import Settings
from tongban.crypto.signing import KeyError_, public_from_jwk
from tongban.exchange import schema
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage
from tongban.keys import service as keys
from tongban.keys.models import SigningKey
from tongban.licences import domain, status, trust
from tongban.licences.federation import (
    KEYS,
    KEYS_PUBLISHED,
    LISTS,
    STATUS_LIST_PUBLISHED,
    VERSIONS,
)
from tongban.licences.federation_models import ForeignIssuer
from tongban.licences.rejection import LicenceRejected, RejectReason

log = logging.getLogger(__name__)


class Refused(ValueError):
    """A licence federation message that must not be applied."""


def _instant(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        raise Refused(f"{what} is not an ISO 8601 instant") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


# --- what a message must be, and who may send it ---------------------------------------


#: A key set's or a list's number from its sender's counter (schema version 2); the
#: counter is an Integer column, so a 32-bit signed value.
PublishedSeq = Annotated[int, Field(ge=1, le=2**31 - 1)]


class KeyEntry(schema.Payload):
    jwk: Annotated[dict[str, Any], Field(max_length=20)]
    not_before: schema.Instant | None = None
    retired_at: schema.Instant | None = None
    not_after: schema.Instant | None = None


class KeysPublished(schema.Payload):
    jurisdiction: schema.RegionCode
    issuer: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    keys: Annotated[list[KeyEntry], Field(max_length=100)]
    #: Version 2; absent in version 1.
    seq: PublishedSeq | None = None


class StatusListPublished(schema.Payload):
    jurisdiction: schema.RegionCode
    list_no: Annotated[int, Field(ge=0, le=1_000_000)]
    uri: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    #: Added when the message leaves its node (attach_status_list).
    token: Annotated[str, StringConstraints(max_length=5_000_000)] | None = None
    #: Version 2; absent in version 1.
    seq: PublishedSeq | None = None


def authorise_issuer(
    session: Session, p: KeysPublished | StatusListPublished, sender: exchange.Sender
) -> None:
    """Only the node issuing for a jurisdiction publishes its keys and status lists,
    never about a jurisdiction this node issues for itself."""
    sender.require(p.jurisdiction, "发证辖区")
    if p.jurisdiction != sender.source_jurisdiction:
        raise exchange.Refused("not-allowed", "发证辖区须为消息的来源辖区")
    if not sender.local and exchange.serves_here(session, p.jurisdiction):
        raise exchange.Refused("not-allowed", f"本节点自行为 {p.jurisdiction} 发证")


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return min(a.astimezone(UTC), b.astimezone(UTC))


def _foreign_jurisdiction(session: Session, payload: dict[str, Any], msg: Any) -> str | None:
    """The jurisdiction a message is about: the one its sender serves (the exchange checked
    that the sending node serves `source_jurisdiction`), never one this node serves —
    except that this node's own message about one (on one node, federation.recipients)
    is its own state: None, nothing to apply."""
    code = payload.get("jurisdiction")
    if not isinstance(code, str) or code != msg.source_jurisdiction:
        raise Refused(f"jurisdiction {code!r} is not the sender's {msg.source_jurisdiction}")
    if exchange.serves_here(session, code):
        if isinstance(msg, OutboxMessage):  # delivered locally: sent by this node
            return None
        raise Refused(f"this node issues for {code} itself")
    return code


@exchange.handler(
    KEYS_PUBLISHED, schema=KeysPublished, authorise=authorise_issuer, versions=VERSIONS
)
def on_keys_published(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """Import another node's licence keys of one jurisdiction (public halves) and record
    its issuer id, when the key set is newer than the one applied. Retirement and
    withdrawal only ever move earlier too, so even a key set without a sequence (version
    1), replayed or late, cannot bring a withdrawn key back."""
    code = _foreign_jurisdiction(session, payload, msg)
    if code is None or not KEYS.newer(session, payload):
        return
    issuer = payload.get("issuer")
    if not isinstance(issuer, str) or domain.jurisdiction_of_issuer(issuer) != code:
        raise Refused(f"issuer {issuer!r} is not an issuer id of {code}")
    entries = payload.get("keys")
    if not isinstance(entries, list):
        raise Refused("keys must be a list")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("jwk"), dict):
            raise Refused("a key entry needs a jwk")
        try:
            kid = public_from_jwk(entry["jwk"]).kid
        except KeyError_ as exc:
            raise Refused(f"unreadable key: {exc}") from exc
        row = session.get(SigningKey, kid)
        if row is not None and (row.purpose != "licence" or row.owner != code):
            raise Refused(f"key {kid} is already known as a {row.purpose} key of {row.owner}")
        if row is not None and row.private_pem is not None:
            continue  # our own key: nothing to learn about it from others
        keys.import_public(
            session,
            "licence",
            code,
            entry["jwk"],
            not_before=_instant(entry.get("not_before"), "not_before"),
            retired_at=(row.retired_at if row is not None else None)
            or _instant(entry.get("retired_at"), "retired_at"),
            not_after=_earliest(
                row.not_after if row is not None else None,
                _instant(entry.get("not_after"), "not_after"),
            ),
        )
    known = session.get(ForeignIssuer, code)
    if known is None:
        session.add(ForeignIssuer(jurisdiction_code=code, issuer=issuer))
        known = session.get(ForeignIssuer, code)
    assert known is not None
    known.issuer = issuer
    known.node_id = getattr(msg, "source_node", None)
    session.flush()
    trust.invalidate()


@exchange.handler(
    STATUS_LIST_PUBLISHED,
    schema=StatusListPublished,
    authorise=authorise_issuer,
    versions=VERSIONS,
)
def on_status_list_published(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """Store another node's status list, when newer than the one applied, after verifying
    it against that jurisdiction's imported issuer keys; a list older (by `iat`) than
    the one held is ignored too. A refusal rolls back the sequence with the rest, so a
    retried list is still newer."""
    code = _foreign_jurisdiction(session, payload, msg)
    if code is None or not LISTS.newer(session, payload):
        return
    list_no, uri, token = payload.get("list_no"), payload.get("uri"), payload.get("token")
    if not isinstance(list_no, int) or not isinstance(uri, str) or not isinstance(token, str):
        raise Refused("list_no, uri and token are required")
    try:
        status.import_list(session, code, list_no, uri, token)
    except LicenceRejected as exc:
        if exc.reason is RejectReason.UNKNOWN_ISSUER:
            raise exchange.OutOfOrder(f"status list {uri}: {exc.detail}") from exc
        log.warning("refused status list %s from %s: %s", uri, msg.source_jurisdiction, exc)
        raise


@exchange.outgoing(STATUS_LIST_PUBLISHED)
def attach_status_list(
    session: Session, payload: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    """The signed list as it is when the message leaves (not when it was queued)."""
    if "token" not in payload:
        payload["token"] = status.status_list_token(
            session, payload["jurisdiction"], int(payload["list_no"])
        )
    return payload
