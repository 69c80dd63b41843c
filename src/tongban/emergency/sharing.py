"""What a jurisdiction shares of its reserves with the federation: the aggregate of its
stock per city and item (held, usable, close to expiry, how many points), never the
lots, points or batches themselves.

The aggregate is a ``kernel.replication.Published`` state (``emergency.stock_published``):
numbered per jurisdiction from the sender's counter, applied by a receiver only when
newer than what it holds (a late or replayed publication changes nothing), and then
replacing that jurisdiction's rows whole. It is published when the transaction that
moved stock commits (once, however many lots moved) and again by the periodic job.

Recipients: one jurisdiction of every other node of the federation. A node that is not
federated serves every jurisdiction itself and reads its own lots, so it sends nothing.
The sender's right, in one place: only the node serving a jurisdiction publishes its
aggregate, every city in it belongs to that jurisdiction, and never about a jurisdiction
the receiving node serves itself."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints
from sqlalchemy import delete
from sqlalchemy.orm import Session

from tongban.db import utcnow
from tongban.emergency import stock_sums
from tongban.emergency.catalogue import CODE_PATTERN
from tongban.emergency.models import SharedStock
from tongban.exchange import schema
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage
from tongban.kernel import replication
from tongban.kernel.node import settings_of
from tongban.localtime import local_date
from tongban.regions import service as regions

STOCK_PUBLISHED = "emergency.stock_published"

#: A jurisdiction's stock aggregate, numbered per jurisdiction.
STOCK = replication.Published(
    STOCK_PUBLISHED, scope=lambda p: f"emergency.stock:{p['jurisdiction']}"
)

#: The most rows one publication carries (cities × items of one jurisdiction).
MAX_ROWS = 200_000


#: An item code as the catalogue writes them (another node's catalogue may hold more).
ItemCode = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]


class SharedRow(schema.Payload):
    city: schema.RegionCode
    item: ItemCode
    quantity: schema.Count
    available: schema.Count
    expiring: schema.Count
    points: schema.Count


class StockPublished(schema.Payload):
    jurisdiction: schema.RegionCode
    as_of: schema.Instant
    rows: Annotated[list[SharedRow], Field(max_length=MAX_ROWS)]
    seq: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


# --- sending -------------------------------------------------------------------------------


#: Whether this node is one of several, and one jurisdiction of every other node: the
#: kernel's (kernel.replication), as for licences and cards.
federated = replication.federated
targets = replication.other_nodes


def payload(session: Session, jurisdiction: str) -> dict[str, Any]:
    """`emergency.stock_published` of `jurisdiction` as its lots stand (`seq` is added
    when it is published). Read from the sums kept with every movement, as
    stock.aggregate reads them."""
    rows = stock_sums.aggregate(session, day=local_date(utcnow()), jurisdictions=[jurisdiction])
    return {
        "jurisdiction": jurisdiction,
        "as_of": utcnow().isoformat(),
        "rows": [
            {"city": c, "item": i, "quantity": q, "available": a, "expiring": e, "points": p}
            for _, c, i, q, a, e, p in rows
        ],
    }


def publish_at_commit(
    session: Session,
    published: replication.Published,
    key: Hashable,
    jurisdiction: str,
    aggregate: Callable[[Session, str], dict[str, Any]],
) -> None:
    """Publish `jurisdiction`'s aggregate (`aggregate(session, jurisdiction)`, as it
    stands then) when the transaction commits, once however often it changed: for one
    jurisdiction of every other node; nothing when the node is not federated or does not
    serve `jurisdiction`. Stock and hospital capacity alike."""

    def build(s: Session) -> tuple[str, Sequence[str], dict[str, Any]] | None:
        settings = settings_of(s)
        to = targets(settings)
        if not to or not exchange.serves(jurisdiction, settings.served_jurisdictions):
            return None
        return jurisdiction, to, aggregate(s, jurisdiction)

    replication.publish_at_commit(session, published, key, build)


def stock_changed(session: Session, jurisdiction: str) -> None:
    """`jurisdiction`'s stock moved: publish its aggregate when the transaction commits."""
    publish_at_commit(session, STOCK, jurisdiction, jurisdiction, payload)


def publish_all(session: Session) -> int:
    """Queue the aggregate of every jurisdiction this node serves for every other node
    (the periodic refresh); how many messages. None on a node that is not federated."""
    settings = settings_of(session)
    to = targets(settings)
    if not to:
        return 0
    n = 0
    for j in regions.list_jurisdictions(session):
        if exchange.serves(j.code, settings.served_jurisdictions):
            n += STOCK.publish(session, j.code, to, payload(session, j.code))
    return n


# --- receiving -----------------------------------------------------------------------------


def require_own_cities(session: Session, jurisdiction: str, cities: set[str]) -> None:
    """Every city of a published aggregate belongs to the jurisdiction publishing it."""
    strangers = sorted(cities - {c.code for c in regions.list_cities(session, jurisdiction)})
    if strangers:
        raise exchange.Refused(
            "bad-payload", f"城市 {'、'.join(strangers[:5])} 不属于 {jurisdiction}", 422
        )


def authorise(session: Session, p: StockPublished, sender: exchange.Sender) -> None:
    sender.require(p.jurisdiction, "储备辖区")
    if p.jurisdiction != sender.source_jurisdiction:
        raise exchange.Refused("not-allowed", "储备辖区须为消息的来源辖区")
    if not sender.local and exchange.serves_here(session, p.jurisdiction):
        raise exchange.Refused("not-allowed", f"本节点自行管理 {p.jurisdiction} 的储备")
    require_own_cities(session, p.jurisdiction, {r.city for r in p.rows})
    if len({(r.city, r.item) for r in p.rows}) != len(p.rows):
        raise exchange.Refused("bad-payload", "同一城市、物资的汇总重复", 422)


@exchange.handler(
    STOCK_PUBLISHED, schema=StockPublished, authorise=authorise, versions=frozenset({1})
)
def on_stock_published(session: Session, data: dict[str, Any], msg: Any) -> None:
    """Keep another jurisdiction's newest stock aggregate (items outside this node's
    catalogue are kept too: they are shown by code)."""
    code = str(data["jurisdiction"])
    if exchange.serves_here(session, code):
        if isinstance(msg, OutboxMessage):
            return  # delivered locally: this node's own stock
        raise exchange.Refused("not-allowed", f"本节点自行管理 {code} 的储备")
    if not STOCK.newer(session, data):
        return
    as_of = datetime.fromisoformat(str(data["as_of"]))
    session.execute(delete(SharedStock).where(SharedStock.jurisdiction_code == code))
    source = getattr(msg, "source_node", None)
    for r in data["rows"]:
        session.add(
            SharedStock(
                jurisdiction_code=code,
                city_code=r["city"],
                item_code=str(r["item"]),
                quantity=int(r["quantity"]),
                available=int(r["available"]),
                expiring=int(r["expiring"]),
                points=int(r["points"]),
                as_of=as_of,
                source_node=source,
            )
        )
    session.flush()
