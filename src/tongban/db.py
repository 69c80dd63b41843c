"""Engine, sessions and the declarative base shared by every context."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Mapper, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware DateTime that always comes back in UTC, on SQLite too
    (which stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


_engines: dict[str, Engine] = {}
#: SQLite: the execution option that makes a connection's transactions begin deferred
#: (`BEGIN`) instead of IMMEDIATE.
DEFERRED_BEGIN = "tongban_sqlite_deferred_begin"


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets foreign keys, WAL and a busy timeout."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # Let SQLAlchemy, not pysqlite, decide when transactions begin, so that
            # SAVEPOINTs (nested transactions, test isolation) behave as documented.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            # IMMEDIATE takes the write lock up front: a deferred transaction that reads
            # and then writes fails at once ("database is locked") when another writer
            # committed in between, whereas waiting for the lock honours busy_timeout.
            # A connection given DEFERRED_BEGIN begins deferred: one that writes only to
            # databases it attached and reads the main one while another connection holds
            # its write lock (the dashboard's committed stage, `dashboard.cells.Stage`).
            deferred = conn.get_execution_options().get(DEFERRED_BEGIN)
            conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_recycle=RECYCLE_SECONDS)
    _ping_when_idle(engine)
    return engine


#: A pooled connection idle this long is pinged before it is handed out again.
IDLE_PING_SECONDS = 10.0
#: A connection is closed and replaced once it is this old (server-side timeouts).
RECYCLE_SECONDS = 1800


def _ping_when_idle(engine: Engine) -> None:
    """Ping a connection at checkout only when it sat in the pool for IDLE_PING_SECONDS.

    `pool_pre_ping` pings on every checkout: one more round trip for every request,
    which SQL counting does not see (issue 14). A connection is lost mostly while it is
    idle (a restarted or failed-over server, a dropped idle TCP connection), and that is
    when this pings; a connection found dead is replaced before anyone uses it (the pool
    retries the checkout). A connection used within the last seconds is handed out as
    is: should the server have gone away meanwhile, the statement fails, and SQLAlchemy
    then invalidates every pooled connection, so the next requests reconnect."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn, record):  # type: ignore[no-untyped-def]
        record.info["tongban_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn, record, _proxy):  # type: ignore[no-untyped-def]
        since = record.info.get("tongban_idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - any failure: take a new connection
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc


def get_engine(url: str) -> Engine:
    """The process's one engine for `url` (made on first use)."""
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions on `engine` that carry no settings: a node's factory is this one bound to
    the node's settings (contexts.build_node); a service given such a session cannot read
    settings (kernel.node.settings_of)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work for a job or a CLI command, on a session of `factory` (a node's:
    `Node.transaction()`): commit at the end, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


#: Called for every row an ORM flush INSERTs, on the flush's own connection (so inside
#: the writer's transaction). Contexts plug in here — the audit chain does (see
#: tongban.audit.hook) — so that this module, which every context imports, imports none.
InsertHook = Callable[[Mapper[Any], Connection, Any], None]
_insert_hooks: list[InsertHook] = []


def on_insert(hook: InsertHook) -> InsertHook:
    """Register `hook` for every row INSERTed by a flush (idempotent; usable as a
    decorator)."""
    if hook not in _insert_hooks:
        _insert_hooks.append(hook)
    return hook


def insert_hooks() -> tuple[InsertHook, ...]:
    return tuple(_insert_hooks)


def _after_insert(mapper: Mapper[Any], connection: Connection, target: Any) -> None:
    for hook in _insert_hooks:
        hook(mapper, connection, target)


if not event.contains(Mapper, "after_insert", _after_insert):
    event.listen(Mapper, "after_insert", _after_insert)
