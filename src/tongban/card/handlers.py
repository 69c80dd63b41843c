"""Receiving what other nodes publish of their cards: their revocation lists, and the
uses of this node's cards at their gates (usage.py registers ``card.used``).

A revocation list is a ``kernel.replication.Published`` state: parsed into its schema,
its sender's right checked (only the node serving a jurisdiction publishes its list,
never about a jurisdiction this node serves itself), applied only when its ``seq`` is
newer than the one applied, and stored only once it verifies against that
jurisdiction's issuing keys in this node's trust list:

- a list signed by a key this node does not know yet raises OutOfOrder (409): the
  jurisdiction's keys may still be on their way (licences publish them), so it is
  retried with back-off;
- a malformed list, one about another jurisdiction than its sender's, a bad signature
  or an expired list is refused (4xx): dead at once, shown to the sending node's
  operator (`tongban exchange dead-letters`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints
from sqlalchemy import delete
from sqlalchemy.orm import Session

from tongban.card import codec
from tongban.card.federation import REVOCATIONS, REVOCATIONS_PUBLISHED
from tongban.card.models import ReceivedRevocations, ReceivedRevocationsVersion
from tongban.card.revocations import REVOCATIONS_LIFETIME
from tongban.card.trust import issuer_keys
from tongban.card.verifier import index_keys
from tongban.crypto.signing import b64u_decode
from tongban.exchange import schema
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage
from tongban.licences import service as licences

log = logging.getLogger(__name__)

#: base64url of a list of up to MAX_REVOKED references (8 bytes each) and its header.
MAX_LIST_TEXT = (codec.REV_HEAD_LEN + 8 * codec.MAX_REVOKED + codec.SIGNATURE_LEN) * 4 // 3 + 4


class RevocationsPublished(schema.Payload):
    jurisdiction: schema.RegionCode
    data: Annotated[str, StringConstraints(min_length=1, max_length=MAX_LIST_TEXT)]
    seq: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


def authorise_issuer(session: Session, p: RevocationsPublished, sender: exchange.Sender) -> None:
    """Only the node serving a jurisdiction publishes its cards' revocation list, never
    about a jurisdiction this node serves itself."""
    sender.require(p.jurisdiction, "发卡辖区")
    if p.jurisdiction != sender.source_jurisdiction:
        raise exchange.Refused("not-allowed", "发卡辖区须为消息的来源辖区")
    if not sender.local and exchange.serves_here(session, p.jurisdiction):
        raise exchange.Refused("not-allowed", f"本节点自行为 {p.jurisdiction} 发卡")


def _refused(detail: str) -> exchange.Refused:
    return exchange.Refused("bad-revocation-list", detail, 422)


def verified_list(
    session: Session, data: bytes, jurisdiction: str, now: int
) -> codec.RevocationList:
    """A received list, decoded and verified against `jurisdiction`'s issuing keys in
    this node's trust list. Raises OutOfOrder (no such key yet) or Refused."""
    try:
        lst = codec.decode_revocations(data)
    except codec.Malformed as e:
        raise _refused(f"吊销名单格式错误：{e}") from e
    if lst.jurisdiction != jurisdiction:
        raise _refused(f"吊销名单属于 {lst.jurisdiction}，而非 {jurisdiction}")
    keys = index_keys(issuer_keys(licences.local_trust(session)))
    key = keys.get((jurisdiction, lst.kid8))
    if key is None:
        raise exchange.OutOfOrder(f"尚无 {jurisdiction} 的签发密钥 {lst.kid8.hex()}，稍后重试")
    if codec.ISSUER_ALG_NAMES[lst.issuer_alg] != key.public.alg.value or not key.usable_at(lst.iat):
        raise _refused(f"签发密钥 {key.kid} 不能签署该名单")
    if not key.public.verify(lst.signing_input(), lst.signature):
        raise _refused("吊销名单签名无效")
    if lst.exp <= now:
        raise _refused("吊销名单已过期")
    return lst


def keep_replaced(session: Session, row: ReceivedRevocations, now: int) -> None:
    """Keep the list `row` holds before a newer one replaces it (this node's gates may
    hold it and get a delta onto it), and forget those older than a list's lifetime."""
    iat = int(row.iat.timestamp())
    if session.get(ReceivedRevocationsVersion, (row.jurisdiction_code, row.seq, iat)) is None:
        session.add(
            ReceivedRevocationsVersion(
                jurisdiction_code=row.jurisdiction_code, seq=row.seq, iat=iat, data=row.data
            )
        )
    session.execute(
        delete(ReceivedRevocationsVersion).where(
            ReceivedRevocationsVersion.jurisdiction_code == row.jurisdiction_code,
            ReceivedRevocationsVersion.iat < now - int(REVOCATIONS_LIFETIME.total_seconds()),
        )
    )


@exchange.handler(
    REVOCATIONS_PUBLISHED,
    schema=RevocationsPublished,
    authorise=authorise_issuer,
    versions=frozenset({1}),
)
def on_revocations_published(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """Keep another node's newest revocation list for this node's gates."""
    code = str(payload["jurisdiction"])
    if exchange.serves_here(session, code):
        if isinstance(msg, OutboxMessage):
            return  # delivered locally: this node's own list (one code path)
        raise exchange.Refused("not-allowed", f"本节点自行为 {code} 发卡")
    if not REVOCATIONS.newer(session, payload):
        return
    try:
        data = b64u_decode(str(payload["data"]))
    except ValueError as e:
        raise _refused("吊销名单不是 base64url") from e
    now = int(datetime.now(UTC).timestamp())
    lst = verified_list(session, data, code, now)
    row = session.get(ReceivedRevocations, code)
    if row is not None and int(row.iat.timestamp()) > lst.iat:
        return  # an older list than the one held (defence in depth beside seq)
    if row is None:
        row = ReceivedRevocations(jurisdiction_code=code)
        session.add(row)
    else:
        keep_replaced(session, row, now)
    row.data = data
    row.seq = lst.seq
    row.count = len(lst.refs)
    row.iat = datetime.fromtimestamp(lst.iat, UTC)
    row.exp = datetime.fromtimestamp(lst.exp, UTC)
    row.source_node = getattr(msg, "source_node", None)
    session.flush()
