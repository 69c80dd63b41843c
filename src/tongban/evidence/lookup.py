"""Evidence lookups answered at once: the synchronous query `evidence.lookup`
(exchange/query.py), for deployments that allow a synchronous answer
(TONGBAN_EVIDENCE_SYNC: "on", or the provider jurisdictions that do).

The query carries exactly the payload of the `evidence.requested` message
(`messages.Requested`) and is checked the same way: the same schema, the same
authoriser (the requester's node, for the provider it asks), the same decision of the
provider on purpose, consent and the requester's authority (`handlers.decide`), logged
the same way in the subject's 我的数据使用记录 (and copied to their log holders). The
query itself is recorded on both nodes (`exchange_query`). A refusal of purpose or
consent is an *answer* (outcome ``refused``, logged on the provider), not a failed
query; a refusal of the exchange (a node that may not ask this, a payload that is not
the contract) is a `QueryRefused`.

When the provider is down or slow (`QueryUnavailable`), the requester sends the
message instead and the request stays pending; if the provider had decided after all,
the message gets the same decision again (`handlers.on_requested`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy.orm import Session

from tongban.config import Settings
from tongban.evidence import handlers, messages
from tongban.exchange import query
from tongban.exchange import schema as s

LOOKUP = "evidence.lookup"


class LookupAnswer(s.Payload):
    """The provider's decision on the request."""

    request_id: s.Uuid
    outcome: Literal["answered", "refused"]
    data: Annotated[dict[str, Any], Field(max_length=200)] | None = None
    reason_code: messages.Code40 | None = None
    reason: s.ShortText | None = None
    at: s.Instant


def sync_allowed(settings: Settings, provider: str) -> bool:
    """Whether this deployment asks `provider` by a synchronous query."""
    value = settings.evidence_sync
    if value == "off":
        return False
    return value == "on" or provider in value.split(",")


@query.query_handler(
    LOOKUP,
    schema=messages.Requested,
    answer_schema=LookupAnswer,
    authorise=messages.authorise_requested,
    subject=lambda p: p.subject.identifier,
)
def answer_lookup(
    session: Session, payload: messages.Requested, ctx: query.QueryContext
) -> LookupAnswer:
    """The provider's side: decide as for the message, and answer the decision now."""
    d = handlers.decide(
        session,
        payload.model_dump(mode="json"),
        provider=ctx.sender.target_jurisdiction,
        source=ctx.sender.source_jurisdiction,
    )
    a = d.access
    return LookupAnswer(
        request_id=a.request_id,
        outcome="answered" if d.answered else "refused",
        data=d.data if d.answered else None,
        reason_code=a.reason_code,
        reason=a.reason,
        at=a.at,
    )
