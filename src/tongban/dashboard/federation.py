"""What a node publishes of its dashboard to the others: the aggregate cells of each
jurisdiction it serves (counts, sums, handling-time histograms — never a record, a name
or an identifier of a person), as a ``kernel.replication.Published`` state
(``dashboard.cells_published``) numbered per jurisdiction; a receiver applies only one
newer than what it holds and replaces that jurisdiction's copy whole. The federation
view adds this node's own cells and the copies.

The sender's right, in one place: only the node serving a jurisdiction publishes its
cells, and never about a jurisdiction the receiving node serves itself. Cells travel
unsuppressed between nodes (suppressing before adding would lose the small cells that
add up to a publishable figure); every page and open-data answer suppresses after
adding."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import Field, StringConstraints
from sqlalchemy.orm import Session

from tongban.dashboard import cells
from tongban.dashboard.domain import (
    DIMENSIONS,
    Indicator,
    Key,
    Value,
    hist_from_json,
    hist_to_json,
)
from tongban.db import utcnow
from tongban.exchange import schema
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage
from tongban.kernel import replication
from tongban.kernel.node import settings_of
from tongban.regions import service as regions

CELLS_PUBLISHED = "dashboard.cells_published"

CELLS = replication.Published(
    CELLS_PUBLISHED, scope=lambda p: f"dashboard.cells:{p['jurisdiction']}"
)

#: The most cells one publication carries.
MAX_ROWS = 500_000

federated = replication.federated
targets = replication.other_nodes

CityOrNone = Annotated[str, StringConstraints(pattern=r"^([0-9]{6})?$")]
IndicatorName = Annotated[str, StringConstraints(pattern=r"^[a-z]+\.[a-z]+$")]


class CellRow(schema.Payload):
    indicator: IndicatorName
    day: date
    from_city: CityOrNone = ""
    to_city: CityOrNone = ""
    category: Annotated[str, StringConstraints(max_length=40)] = ""
    authority: Annotated[str, StringConstraints(max_length=80)] = ""
    matter: Annotated[str, StringConstraints(max_length=120)] = ""
    n: schema.Count
    total: Annotated[int, Field(ge=-(2**62), le=2**62)] = 0
    extra: Annotated[int, Field(ge=-(2**62), le=2**62)] = 0
    hist: Annotated[dict[str, schema.Count], Field(max_length=200)] | None = None


class CellsPublished(schema.Payload):
    jurisdiction: schema.RegionCode
    as_of: schema.Instant
    rows: Annotated[list[CellRow], Field(max_length=MAX_ROWS)]
    seq: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


_FIELDS = [d for d in DIMENSIONS if d != "jurisdiction"]


def payload(session: Session, jurisdiction: str) -> dict[str, Any]:
    """`dashboard.cells_published` of `jurisdiction`: this node's cells of it."""
    rows = []
    for k, v in cells.read(session, "", jurisdiction).items():
        m: dict[str, Any] = {d: getattr(k, d) for d in _FIELDS}
        m["day"] = k.day.isoformat()
        rows.append(
            {**m, "n": v.n, "total": v.total, "extra": v.extra, "hist": hist_to_json(v.hist)}
        )
    return {"jurisdiction": jurisdiction, "as_of": utcnow().isoformat(), "rows": rows}


def publish_all(session: Session) -> int:
    """Queue the cells of every jurisdiction this node serves for every other node; how
    many messages (none when not federated)."""
    settings = settings_of(session)
    to = targets(settings)
    if not to:
        return 0
    n = 0
    for j in regions.list_jurisdictions(session):
        if exchange.serves(j.code, settings.served_jurisdictions):
            n += CELLS.publish(session, j.code, to, payload(session, j.code))
    return n


def authorise(session: Session, p: CellsPublished, sender: exchange.Sender) -> None:
    sender.require(p.jurisdiction, "统计辖区")
    if p.jurisdiction != sender.source_jurisdiction:
        raise exchange.Refused("not-allowed", "统计辖区须为消息的来源辖区")
    if not sender.local and exchange.serves_here(session, p.jurisdiction):
        raise exchange.Refused("not-allowed", f"本节点自行统计 {p.jurisdiction} 的数据")
    known = {i.value for i in Indicator}
    strangers = sorted({r.indicator for r in p.rows} - known)
    if strangers:
        raise exchange.Refused("bad-payload", f"未知指标 {'、'.join(strangers[:5])}", 422)
    keys = {tuple(getattr(r, d) for d in _FIELDS) for r in p.rows}
    if len(keys) != len(p.rows):
        raise exchange.Refused("bad-payload", "同一统计单元重复", 422)


@exchange.handler(
    CELLS_PUBLISHED, schema=CellsPublished, authorise=authorise, versions=frozenset({1})
)
def on_cells_published(session: Session, data: dict[str, Any], msg: Any) -> None:
    """Keep another jurisdiction's newest published cells (replacing its older copy)."""
    code = str(data["jurisdiction"])
    if exchange.serves_here(session, code):
        if isinstance(msg, OutboxMessage):
            return  # delivered locally: this node's own cells
        raise exchange.Refused("not-allowed", f"本节点自行统计 {code} 的数据")
    if not CELLS.newer(session, data):
        return
    cells.forget_origin(session, code)
    copy: dict[Key, Value] = {}
    for r in data["rows"]:
        day = r["day"] if isinstance(r["day"], date) else date.fromisoformat(str(r["day"]))
        key = Key(**{**{d: r[d] for d in _FIELDS}, "day": day, "jurisdiction": code})
        copy[key] = Value(
            int(r["n"]),
            int(r.get("total") or 0),
            int(r.get("extra") or 0),
            hist_from_json(r.get("hist") or None),
        )
    cells.store(session, copy, code)
    session.flush()
