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
  it does not hold (a delta lost, late, or no copy at all) makes the receiver ask the
  publisher for a full snapshot (``dashboard.snapshot_wanted``, at most once per
  jurisdiction in ``ask_seconds()``) and is dropped, the snapshot being numbered after
  it; asked already, it is delivered later (``OutOfOrder``: the missing one may still
  come, or the snapshot asked for makes it stale).

The publisher answers a request at once with a full snapshot to the asking node only,
after checking it as hostile input: from another node of the federation, about a
jurisdiction this node publishes and the asking node does not serve, at most once per
asking node and jurisdiction in ``answer_seconds()`` (else 429, retried later). The
other nodes never see that snapshot's number, so the next round is full for all.

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

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Annotated, Any, cast

from pydantic import Field, StringConstraints
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Table, event, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tongban.dashboard import cellkey, cells
from tongban.dashboard.domain import (
    DIMENSIONS,
    HIST_CAP,
    Indicator,
    Key,
    Value,
    hist_from_json,
    hist_to_json,
)
from tongban.dashboard.models import DashCell, DashHist, DashStamp
from tongban.db import utcnow
from tongban.exchange import schema
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage
from tongban.kernel import numbering, replication
from tongban.kernel.node import settings_of
from tongban.regions import service as regions

log = logging.getLogger(__name__)

CELLS_PUBLISHED = "dashboard.cells_published"
#: A receiver that found a gap in a jurisdiction's publications asks its publisher for
#: a full snapshot (answered with one, to the asking node only).
SNAPSHOT_WANTED = "dashboard.snapshot_wanted"

CELLS = replication.Published(
    CELLS_PUBLISHED, scope=lambda p: f"dashboard.cells:{p['jurisdiction']}"
)

#: The most cells one publication carries.
MAX_ROWS = 500_000


class PublishSettings(BaseSettings):
    """TONGBAN_DASHBOARD_FULL_EVERY: every this many rounds of the publishing job, a full
    snapshot (the others: deltas, or nothing when no cell changed).
    TONGBAN_DASHBOARD_ASK_SECONDS: a receiver asks the publisher of a jurisdiction for a
    full snapshot at most once in this many seconds.
    TONGBAN_DASHBOARD_ANSWER_SECONDS: a publisher answers one node's requests about one
    jurisdiction at most once in this many seconds (shorter than the asking interval: a
    request held up on the way must not make the next one look too early)."""

    model_config = SettingsConfigDict(
        env_prefix="TONGBAN_DASHBOARD_", env_file=".env", extra="ignore"
    )
    full_every: Annotated[int, Field(ge=1)] = 12
    ask_seconds: Annotated[int, Field(ge=0, le=86_400)] = 600
    answer_seconds: Annotated[int, Field(ge=0, le=86_400)] = 300


@lru_cache
def full_every() -> int:
    return PublishSettings().full_every


@lru_cache
def ask_seconds() -> int:
    return PublishSettings().ask_seconds


@lru_cache
def answer_seconds() -> int:
    return PublishSettings().answer_seconds


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
    #: The cell's key (the sum of its events' keys modulo 2³², cellkey.py); 0 from a
    #: publisher without keys.
    ckey: Annotated[int, Field(ge=0, lt=2**32)] = 0


class CellsPublished(schema.Payload):
    jurisdiction: schema.RegionCode
    as_of: schema.Instant
    rows: Annotated[list[CellRow], Field(max_length=MAX_ROWS)]
    seq: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    #: A delta: the sequence of the publication it applies on top of (None: a full snapshot).
    base: Annotated[int, Field(ge=1, le=2**31 - 2)] | None = None


class SnapshotWanted(schema.Payload):
    """A request for a full snapshot of `jurisdiction`, with the version the asking node
    holds (0: none) and the publication that showed the gap (for the publisher's log)."""

    jurisdiction: schema.RegionCode
    held: Annotated[int, Field(ge=0, le=2**31 - 1)]
    seen: Annotated[int, Field(ge=1, le=2**31 - 1)]


_FIELDS = [d for d in DIMENSIONS if d != "jurisdiction"]


def _rows(found: Iterable[tuple[Key, Value]]) -> list[dict[str, Any]]:
    rows = []
    for k, v in found:
        m: dict[str, Any] = {d: getattr(k, d) for d in _FIELDS}
        m["day"] = k.day.isoformat()
        sums = {"n": v.n, "total": v.total, "extra": v.extra, "ckey": v.ckey % cellkey.MODULUS}
        rows.append({**m, **sums, "hist": hist_to_json(v.hist)})
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
        hash(k): hash(
            (v.n, v.total, v.extra, v.ckey % cellkey.MODULUS, tuple(sorted((v.hist or {}).items())))
        )
        for k, v in current.items()
    }


def forget_sent() -> None:
    """Forget what was published (as a restart does): the next publications are full."""
    _sent.clear()


@event.listens_for(Session, "after_commit")
def _remember_sent(session: Session) -> None:
    for where, sent in session.info.pop(_PENDING, {}).items():
        if sent is None:  # a snapshot only one node got: the next round is full for all
            _sent.pop(where, None)
        else:
            _sent[where] = sent


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending(session: Session, previous: Any) -> None:
    session.info.pop(_PENDING, None)


def publication(
    session: Session, jurisdiction: str, *, one_node: bool = False
) -> dict[str, Any] | None:
    """The next publication of `jurisdiction` (numbered): a delta on the previous one
    when this process published that one and nothing forces a full snapshot (see the
    module's docstring), else full; None when it would be a delta without a cell (the
    round counts towards the next full snapshot). What it carries is remembered when the
    transaction commits. `one_node`: a full snapshot for one node only (an answer to
    its request): the others never see its number, so this process forgets what it
    published and its next round is full."""
    current = cells.read(session, "", jurisdiction)
    prints = _fingerprints(current)
    where = (_where(session), jurisdiction)
    last = None if one_node else _sent.get(where)
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
    sent: _Sent | None
    if changed is not None and last is not None and last.seq == seq - 1:
        body["rows"] = _rows((k, current[k]) for k in changed)
        body["base"] = seq - 1
        sent = _Sent(seq, prints, last.rounds + 1)
    else:
        body["rows"] = _rows(current.items())
        sent = None if one_node else _Sent(seq, prints)
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
        # An earlier publication has not been applied here (lost, late, or this node's
        # copy is missing). Ask the publisher for a full snapshot — it is numbered after
        # this delta and carries its cells, so this one is taken as delivered and dropped;
        # asked already within ask_seconds(): deliver this one later (the missing one, or
        # the snapshot asked for, which makes this one stale, repairs the copy).
        if ask_snapshot(session, code, held, int(data["seq"]), msg):
            return
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
        int(r.get("ckey") or 0),
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
        sums = (DashCell.n, DashCell.total, DashCell.extra, DashCell.ckey)
        q = select(DashCell.id, *sums, *cols).where(
            DashCell.origin == code,
            tuple_(DashCell.indicator, DashCell.day).in_(days[i : i + 500]),
        )
        for row in session.execute(q):
            key = Key(*row[5:])
            if key in incoming:
                old[key] = by_id[row.id] = Value(row.n, row.total, row.extra, ckey=row.ckey)
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
        d = Value(
            new.n - was.n,
            new.total - was.total,
            new.extra - was.extra,
            hist or None,
            new.ckey - was.ckey,
        )
        if d.n or d.total or d.extra or d.hist or d.ckey:
            out[k] = d
    return out


# --- a receiver asks for a full snapshot --------------------------------------------------


def _stamp(session: Session, scope: str, window: int) -> bool:
    """Whether nothing was stamped under `scope` in the last `window` seconds; if so, now
    is (in the caller's transaction, so a rollback takes it back). One statement: two
    transactions at once cannot both pass (the row's lock, or SQLite's write lock)."""
    now = utcnow()
    table = cast(Table, DashStamp.__table__)
    name = session.get_bind().dialect.name
    dialect_insert = postgresql.insert if name == "postgresql" else sqlite.insert
    stmt = (
        dialect_insert(table)
        .values(scope=scope, at=now)
        .on_conflict_do_update(
            index_elements=[table.c.scope],
            set_={"at": now},
            where=table.c.at <= now - timedelta(seconds=window),
        )
        .returning(table.c.scope)
    )
    return session.execute(stmt).first() is not None


def ask_snapshot(session: Session, code: str, held: int, seen: int, msg: Any) -> bool:
    """Ask the node publishing `code` for a full snapshot (this node holds version `held`,
    0 for none, and received publication `seen` it cannot apply), unless this node asked
    for one within ask_seconds(); whether it asked (the request leaves when the caller
    commits)."""
    settings = settings_of(session)
    if not replication.federated(settings):
        return False
    source = getattr(msg, "target_jurisdiction", None)  # where the publication came to
    if not isinstance(source, str) or not exchange.serves(source, settings.served_jurisdictions):
        source = settings.served_jurisdictions.split(",")[0].strip()
    if not _stamp(session, f"snapshot.asked:{code}", ask_seconds()):
        return False
    body = {"jurisdiction": code, "held": held, "seen": seen}
    exchange.send(session, SNAPSHOT_WANTED, source, code, body)
    log.info(
        "dashboard: asked for a full snapshot of %s (holding %s, received %s)", code, held, seen
    )
    return True


def authorise_wanted(session: Session, p: SnapshotWanted, sender: exchange.Sender) -> None:
    """A request is hostile input: from another node of the federation, about a
    jurisdiction this node publishes and the asking node does not serve itself."""
    code = p.jurisdiction
    if sender.local:
        raise exchange.Refused("not-allowed", f"本节点自行统计 {code} 的数据，无需索取")
    if code != sender.target_jurisdiction:
        raise exchange.Refused("bad-payload", "索取的统计辖区须为消息的目标辖区", 422)
    if sender.serves(code):
        raise exchange.Refused(
            "not-allowed", f"请求方节点 {sender.node} 自行统计 {code} 的数据，无权索取"
        )
    known = {j.code for j in regions.list_jurisdictions(session)}
    if code not in known or not exchange.serves_here(session, code):
        raise exchange.Refused("not-served", f"本节点不发布 {code} 的统计数据", 404)


@exchange.handler(SNAPSHOT_WANTED, schema=SnapshotWanted, authorise=authorise_wanted)
def on_snapshot_wanted(session: Session, data: dict[str, Any], msg: Any) -> None:
    """Answer a request at once: a full snapshot of the jurisdiction, to the asking node
    only — at most once per asking node and jurisdiction in answer_seconds() (else 429:
    the asking node retries later with back-off)."""
    code = str(data["jurisdiction"])
    node = str(getattr(msg, "source_node", "") or "")
    if not _stamp(session, f"snapshot.answered:{node[:80]}:{code}", answer_seconds()):
        raise exchange.Refused(
            "too-many-requests",
            f"节点 {node} 索取 {code} 统计全量过于频繁，{answer_seconds()} 秒内只答复一次",
            429,
        )
    body = publication(session, code, one_node=True)
    if body is None:  # (never: for one node it is always a full snapshot)
        raise RuntimeError(f"no full snapshot of {code} to answer with")
    exchange.send(session, CELLS_PUBLISHED, code, str(msg.source_jurisdiction), body)
    log.info(
        "dashboard: full snapshot %s of %s sent to %s (it held %s, received %s)",
        body["seq"],
        code,
        node,
        data["held"],
        data["seen"],
    )
