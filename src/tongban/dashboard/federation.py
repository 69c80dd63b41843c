"""What a node publishes of its dashboard to the others: the aggregate cells of each
jurisdiction it serves (counts, sums, handling-time histograms — never a record, a name
or an identifier of a person), as a ``kernel.replication.Published`` state
(``dashboard.cells_published``) numbered per jurisdiction. The federation view adds this
node's own cells and the copies.

Two kinds of publication share the message type and its sequence:

- a **full snapshot** (no ``base``): every cell of the jurisdiction; a receiver applies
  one newer than what it holds and replaces its copy whole;
- a **delta** (``base`` = the sequence of the publication it follows, ``seq`` = base + 1):
  only the cells whose values changed since that publication, each with its new value
  (absolute, not an increment: validated like a snapshot's). A receiver applies it only
  on top of exactly that version (its copy's cells named in the delta take their new
  values, in one transaction); a replayed or older one changes nothing; one whose base
  it does not hold yet is delivered later (``OutOfOrder``: the missing one may still
  come), and a full snapshot newer than both repairs a copy whose delta was lost.

The sender remembers what it last published of each jurisdiction (a fingerprint per
cell, in the publishing process, set when the publication commits) and sends a full
snapshot when it has no such memory (a restart), when another publication was numbered
since (another process), when a cell disappeared (a recompute), and every
``full_every()``-th round of the publishing job (12 unless set), so a receiver that missed one, or joined
late, is repaired within that many rounds. A round in which no cell changed sends
nothing.

The sender's right, in one place: only the node serving a jurisdiction publishes its
cells, and never about a jurisdiction the receiving node serves itself. Cells travel
unsuppressed between nodes (suppressing before adding would lose the small cells that
add up to a publishable figure); every page and open-data answer suppresses after
adding."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, StringConstraints
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import event, select, tuple_
from sqlalchemy.orm import Session

from tongban.dashboard import cells
from tongban.dashboard.domain import (
    DIMENSIONS,
    HIST_CAP,
    Indicator,
    Key,
    Value,
    hist_from_json,
    hist_to_json,
)
from tongban.dashboard.models import DashCell, DashHist
from tongban.db import utcnow
from tongban.exchange import schema
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage
from tongban.kernel import numbering, replication
from tongban.kernel.node import settings_of
from tongban.regions import service as regions

CELLS_PUBLISHED = "dashboard.cells_published"

CELLS = replication.Published(
    CELLS_PUBLISHED, scope=lambda p: f"dashboard.cells:{p['jurisdiction']}"
)

#: The most cells one publication carries.
MAX_ROWS = 500_000


class PublishSettings(BaseSettings):
    """TONGBAN_DASHBOARD_FULL_EVERY: every this many rounds of the publishing job, a full
    snapshot (the others: deltas, or nothing when no cell changed)."""

    model_config = SettingsConfigDict(
        env_prefix="TONGBAN_DASHBOARD_", env_file=".env", extra="ignore"
    )
    full_every: Annotated[int, Field(ge=1)] = 12


@lru_cache
def full_every() -> int:
    return PublishSettings().full_every


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
    #: A delta: the sequence of the publication it applies on top of (None: a full snapshot).
    base: Annotated[int, Field(ge=1, le=2**31 - 2)] | None = None


_FIELDS = [d for d in DIMENSIONS if d != "jurisdiction"]


def _rows(found: Iterable[tuple[Key, Value]]) -> list[dict[str, Any]]:
    rows = []
    for k, v in found:
        m: dict[str, Any] = {d: getattr(k, d) for d in _FIELDS}
        m["day"] = k.day.isoformat()
        rows.append(
            {**m, "n": v.n, "total": v.total, "extra": v.extra, "hist": hist_to_json(v.hist)}
        )
    return rows


# --- what the sender last published --------------------------------------------------


@dataclass
class _Sent:
    """What this process last published of a jurisdiction: its sequence, a fingerprint
    of each cell it carried (hash of the key -> hash of the values), and the rounds
    since the last full snapshot."""

    seq: int
    prints: dict[int, int]
    rounds: int = 0


#: Per (database, jurisdiction): what this process last published, as committed.
_sent: dict[tuple[str, str], _Sent] = {}
_PENDING = "tongban.dashboard.federation.sent"


def _where(session: Session) -> str:
    bind = session.get_bind()
    return str(bind.engine.url)


def _fingerprints(current: dict[Key, Value]) -> dict[int, int]:
    return {
        hash(k): hash((v.n, v.total, v.extra, tuple(sorted((v.hist or {}).items()))))
        for k, v in current.items()
    }


def forget_sent() -> None:
    """Forget what was published (as a restart does): the next publications are full."""
    _sent.clear()


@event.listens_for(Session, "after_commit")
def _remember_sent(session: Session) -> None:
    _sent.update(session.info.pop(_PENDING, {}))


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending(session: Session, previous: Any) -> None:
    session.info.pop(_PENDING, None)


def publication(session: Session, jurisdiction: str) -> dict[str, Any] | None:
    """The next publication of `jurisdiction` (numbered): a delta on the previous one
    when this process published that one and nothing forces a full snapshot (see the
    module's docstring), else full; None when it would be a delta without a cell (the
    round counts towards the next full snapshot). What it carries is remembered when the
    transaction commits."""
    current = cells.read(session, "", jurisdiction)
    prints = _fingerprints(current)
    where = (_where(session), jurisdiction)
    last = _sent.get(where)
    changed: list[Key] | None = None
    if last is not None and last.rounds + 1 < full_every() and last.prints.keys() <= prints.keys():
        changed = [k for k, v in current.items() if last.prints.get(hash(k)) != prints[hash(k)]]
        if not changed:
            last.rounds += 1
            return None
    seq = CELLS.next_seq(session, {"jurisdiction": jurisdiction})
    body: dict[str, Any] = {
        "jurisdiction": jurisdiction,
        "as_of": utcnow().isoformat(),
        "seq": seq,
    }
    if changed is not None and last is not None and last.seq == seq - 1:
        body["rows"] = _rows((k, current[k]) for k in changed)
        body["base"] = seq - 1
        sent = _Sent(seq, prints, last.rounds + 1)
    else:
        body["rows"] = _rows(current.items())
        sent = _Sent(seq, prints)
    session.info.setdefault(_PENDING, {})[where] = sent
    return body


def publish_all(session: Session) -> int:
    """Queue the cells of every jurisdiction this node serves for every other node — a
    delta since the previous publication, or a full snapshot (see the module's
    docstring); how many messages (none when not federated, or nothing changed)."""
    settings = settings_of(session)
    to = targets(settings)
    if not to:
        return 0
    n = 0
    for j in regions.list_jurisdictions(session):
        if exchange.serves(j.code, settings.served_jurisdictions):
            body = publication(session, j.code)
            if body is None:
                continue
            for target in to:
                exchange.send(session, CELLS_PUBLISHED, j.code, target, body)
            n += len(to)
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
    for r in p.rows:
        for b in r.hist or ():
            if not b.isdigit() or int(b) > HIST_CAP:
                raise exchange.Refused("bad-payload", f"办理时长分组 {b[:10]} 超出范围", 422)
    if p.base is not None and p.seq != p.base + 1:
        raise exchange.Refused("bad-payload", "增量须紧接其所依据的发布（seq = base + 1）", 422)


@exchange.handler(
    CELLS_PUBLISHED, schema=CellsPublished, authorise=authorise, versions=frozenset({1})
)
def on_cells_published(session: Session, data: dict[str, Any], msg: Any) -> None:
    """Keep another jurisdiction's newest published cells: a full snapshot replaces the
    copy, a delta on exactly the version held sets the cells it names."""
    code = str(data["jurisdiction"])
    if exchange.serves_here(session, code):
        if isinstance(msg, OutboxMessage):
            return  # delivered locally: this node's own cells
        raise exchange.Refused("not-allowed", f"本节点自行统计 {code} 的数据")
    # Before the held version is read: two deliveries for `code` at once would both
    # read it and apply on top of it (the refresh takes its own origin's lock the same way).
    cells.lock_origin(session, code)
    incoming = {_key(r, code): _value(r) for r in data["rows"]}
    base = data.get("base")
    if base is None:
        if not CELLS.newer(session, data):
            return
        cells.forget_origin(session, code)
        cells.store(session, incoming, code)
        session.flush()
        return
    held = _held(session, code)
    if int(data["seq"]) <= held:
        return  # replayed or overtaken by a newer publication
    if int(base) != held:
        # An earlier publication has not been applied here: deliver this one later (the
        # missing one, or a newer full snapshot that makes this one stale, repairs it).
        raise exchange.OutOfOrder(f"{code} 的统计增量依据第 {base} 次发布，本节点持有第 {held} 次")
    if not CELLS.newer(session, data):
        return
    cells.store(session, _differences(session, code, incoming), code)
    session.flush()


def _key(r: dict[str, Any], code: str) -> Key:
    day = r["day"] if isinstance(r["day"], date) else date.fromisoformat(str(r["day"]))
    return Key(**{**{d: r[d] for d in _FIELDS}, "day": day, "jurisdiction": code})


def _value(r: dict[str, Any]) -> Value:
    return Value(
        int(r["n"]),
        int(r.get("total") or 0),
        int(r.get("extra") or 0),
        hist_from_json(r.get("hist") or None),
    )


def _held(session: Session, code: str) -> int:
    """The sequence of the publication of `code` this node's copy is at (0: none)."""
    row = session.get(numbering.NumberCounter, (f"in:{CELLS.scope({'jurisdiction': code})}", ""))
    return int(row.last) if row is not None else 0


def _differences(session: Session, code: str, incoming: dict[Key, Value]) -> dict[Key, Value]:
    """What to add to `code`'s copy so the cells of `incoming` take its values (the
    stored cells and histograms add; the monthly roll-ups follow)."""
    old: dict[Key, Value] = {}
    days = sorted({(k.indicator, k.day) for k in incoming})
    cols = [DashCell.indicator, DashCell.day, *(getattr(DashCell, d) for d in cells.REST)]
    by_id: dict[int, Value] = {}
    for i in range(0, len(days), 500):
        q = select(DashCell.id, DashCell.n, DashCell.total, DashCell.extra, *cols).where(
            DashCell.origin == code,
            tuple_(DashCell.indicator, DashCell.day).in_(days[i : i + 500]),
        )
        for row in session.execute(q):
            key = Key(*row[4:])
            if key in incoming:
                old[key] = by_id[row.id] = Value(row.n, row.total, row.extra)
    ids = sorted(by_id)
    for i in range(0, len(ids), 500):
        hq = select(DashHist.cell_id, DashHist.bucket, DashHist.n).where(
            DashHist.cell_id.in_(ids[i : i + 500])
        )
        for cid, bucket, n in session.execute(hq):
            v = by_id[cid]
            v.hist = {**(v.hist or {}), int(bucket): int(n)}
    out: dict[Key, Value] = {}
    for k, new in incoming.items():
        was = old.get(k, Value(0, 0, 0, None))
        hist = dict(new.hist or {})
        for b, c in (was.hist or {}).items():
            hist[b] = hist.get(b, 0) - c
        hist = {b: c for b, c in hist.items() if c}
        d = Value(new.n - was.n, new.total - was.total, new.extra - was.extra, hist or None)
        if d.n or d.total or d.extra or d.hist:
            out[k] = d
    return out
