"""Tables of the dashboard: the aggregate cells (this node's own and the copies other
nodes published) with their histograms and monthly roll-ups, a watermark per event source, and a log of refreshes tying every
figure to the audit chain position (and signed checkpoint) it was computed at."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tongban.db import Base, UTCDateTime, utcnow


class _KeyAndSums:
    """The columns every cell-shaped table shares: the key dimensions after indicator
    and day (see domain.Key), and the sums."""

    from_city: Mapped[str] = mapped_column(String(6), default="")
    to_city: Mapped[str] = mapped_column(String(6), default="")
    jurisdiction: Mapped[str] = mapped_column(String(6), default="")
    category: Mapped[str] = mapped_column(String(40), default="")
    authority: Mapped[str] = mapped_column(String(80), default="")
    matter: Mapped[str] = mapped_column(String(120), default="")
    n: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    extra: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The cell's key: the sum of its events' keys (cellkey.py), added like `n`; read
    #: modulo 2³², it chooses the noise of every published count of these events.
    ckey: Mapped[int] = mapped_column(BigInteger, default=0)


class DashCell(_KeyAndSums, Base):
    """One aggregate cell (see domain.Key). `origin` is "" for this node's own cells and
    the publishing jurisdiction's code for a copy received from another node (replaced
    whole on each publication); the federation view adds them all."""

    __tablename__ = "dash_cell"
    __table_args__ = (
        # Indicator and day first: the pages' range reads (indicators × a period) are
        # served by the unique key itself, with no second index to write (session 12).
        Index(
            "uq_dash_cell_key",
            "indicator",
            "day",
            "origin",
            "from_city",
            "to_city",
            "jurisdiction",
            "category",
            "authority",
            "matter",
            unique=True,
        ),
    )
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    origin: Mapped[str] = mapped_column(String(6), default="")
    indicator: Mapped[str] = mapped_column(String(40))
    day: Mapped[date] = mapped_column(Date)


class DashHist(Base):
    """A cell's handling-time histogram, one row per bucket (whole working days, capped
    at domain.HIST_CAP): SQL adds the buckets, so p50/p90 of any sum of cells are read
    from at most HIST_CAP + 1 summed rows."""

    __tablename__ = "dash_hist"
    cell_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class DashMonth(_KeyAndSums, Base):
    """The monthly roll-ups of dash_cell (`month` the first day of the month), kept by the
    fold that writes the cells, at the levels of domain.LEVELS (each keeps some of the
    key's dimensions, "" in the rest; none keeps the whole key: a read needing more
    than a level keeps reads the daily cells): a year's page reads 12 rows per figure
    it shows instead of 365 per cell."""

    __tablename__ = "dash_month"
    __table_args__ = (
        # Level, indicator and month first: the pages' reads (one level, indicators ×
        # months) are served by the unique key itself (session 12).
        Index(
            "uq_dash_month_key",
            "level",
            "indicator",
            "month",
            "origin",
            "from_city",
            "to_city",
            "jurisdiction",
            "category",
            "authority",
            "matter",
            unique=True,
        ),
    )
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    origin: Mapped[str] = mapped_column(String(6), default="")
    level: Mapped[str] = mapped_column(String(1))
    indicator: Mapped[str] = mapped_column(String(40))
    month: Mapped[date] = mapped_column(Date)


class DashMonthHist(Base):
    """A monthly roll-up's histogram (as dash_hist)."""

    __tablename__ = "dash_month_hist"
    month_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class DashStage(_KeyAndSums, Base):
    """Facts on their way into the cells (the chain's facts one row each:
    sources._staged; cells another node published, a row per cell and bucket): written
    by INSERT … SELECTs per batch of events, folded into dash_cell / dash_hist /
    dash_month* by set-based upserts, and emptied in the same transaction. `n`, `total`,
    `extra` add to the cell; `hn` events to the histogram bucket `bucket` (NULL: none).
    On PostgreSQL a refresh puts its facts on a scratch table of the same columns instead
    (cells.Stage: its SELECT on parallel workers), dropped in its transaction."""

    __tablename__ = "dash_stage"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    indicator: Mapped[str] = mapped_column(String(40))
    day: Mapped[date] = mapped_column(Date)
    bucket: Mapped[int | None] = mapped_column(Integer)
    hn: Mapped[int] = mapped_column(BigInteger, default=0)


class DashStageMonth(_KeyAndSums, Base):
    """The stage folded by month, once per roll-up level (`level`, as dash_month): each
    grouped from dash_stage, or from the smallest level already here that keeps all of
    its dimensions (far fewer rows than the stage when a key has many events a month)
    when there is one, then added to dash_month / dash_month_hist by one upsert
    each. Emptied in the transaction that fills it (UNLOGGED on PostgreSQL)."""

    __tablename__ = "dash_stage_month"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    level: Mapped[str] = mapped_column(String(1))
    indicator: Mapped[str] = mapped_column(String(40))
    month: Mapped[date] = mapped_column(Date)
    bucket: Mapped[int | None] = mapped_column(Integer)
    hn: Mapped[int] = mapped_column(BigInteger, default=0)


class DashEntry(Base):
    """A batch of audit chain entries the refresh reads (SQLite), with the fields it
    needs (the record the subject names, the action or target state, the Beijing day of
    the event; since session 15 from the chain's typed columns, migration 0058): the
    facts are then made from these rows, one statement per kind of fact. Emptied after
    each batch. PostgreSQL's refresh reads the chain's typed columns in its facts'
    statement itself (UNLOGGED there, this table stays empty)."""

    __tablename__ = "dash_entry"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(40))
    rid: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str | None] = mapped_column(String)
    to_state: Mapped[str | None] = mapped_column(String)
    day: Mapped[date | None] = mapped_column(Date)


class DashWorkday(Base):
    """Working-day ordinals (working days since a base date) per calendar day, written
    from the calendar context's predicate at each refresh that folds new events: the
    working days between two dates are a difference of two joined ordinals."""

    __tablename__ = "dash_workday"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    ordinal: Mapped[int] = mapped_column(Integer)


class DashWatermark(Base):
    """How far a source has been folded in: the audit chain's seq for the audited
    events, (time, id) for a table read by time (with a settling lag)."""

    __tablename__ = "dash_watermark"
    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    mark_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mark_id: Mapped[str] = mapped_column(String(40), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DashRefresh(Base):
    """One refresh: how many events it folded in, and the audit chain position it read
    up to (seq, entry hash) with the newest signed checkpoint covering it — the figures
    published after it are traceable to that point of the chain."""

    __tablename__ = "dash_refresh"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    audit_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    audit_hash: Mapped[str] = mapped_column(String(64), default="")
    checkpoint_seq: Mapped[int | None] = mapped_column(BigInteger)
    checkpoint_hash: Mapped[str | None] = mapped_column(String(64))
    full: Mapped[bool] = mapped_column(default=False)


class DashSecret(Base):
    """A secret of this node's dashboard, made once at random (`cellkey.secret`): the
    events' keys are computed under it, so nobody without it can compute a cell's key
    and take its noise off the published figures. Kept as long as the cells made with
    it (a new secret needs a recompute: `tongban dashboard recompute`)."""

    __tablename__ = "dash_secret"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class DashStamp(Base):
    """When this node last did something it does at most once in an interval, by scope:
    asked a publisher for a full snapshot of a jurisdiction
    (``snapshot.asked:<jurisdiction>``), answered one node's request for one
    (``snapshot.answered:<node>:<jurisdiction>``). Written in the transaction that does
    it, so a rollback takes it back (federation.py)."""

    __tablename__ = "dash_stamp"
    scope: Mapped[str] = mapped_column(String(120), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
