"""Per-process caches of rows that are read on every request and seldom change
(reference data, bearer tokens), invalidated when the rows change — in this process at
once, in every other process when the writing transaction commits.

A cache is declared with the tables it depends on::

    MATTERS = Cache("catalog.matters", tables={"matter", "matter_material"}, ttl=300)
    ref = MATTERS.get(session, code, lambda: load(session, code))

Values are plain frozen dataclasses (never ORM objects: they outlive the session).

**How a change is seen.** Every INSERT/UPDATE/DELETE statement SQLAlchemy executes (an
ORM flush, a bulk ``update()``, a Core statement) passes an engine event here; one on a
watched table marks its connection. Then:

- *this process*: the caches of that table are dropped at once (and again when the
  transaction ends), and while the writing connection's transaction is open its reads
  bypass the caches (it sees its own uncommitted rows, nobody else does);
- *other processes* (PostgreSQL): just before the writing transaction commits,
  ``pg_notify('tongban_cache', '<table names>')`` is sent in it (for the tables of
  ``WATCHED_TABLES``, known to every process whatever it imported); PostgreSQL delivers it
  when, and only if, the transaction commits. Each process keeps one listening
  connection (a daemon thread) that drops the named caches as the notification arrives.
  A cache is only used while that listener is connected: when it is not (not yet
  started, lost), every read goes to the database, and on (re)connecting every cache
  is dropped, since notifications may have been missed.
- A load that started before a drop is not stored (a generation counter), so a read
  racing with a change cannot put the old row back after the drop.
- On SQLite (one process in practice: development, tests) there is no notification:
  a cache with ``needs_listener`` (tokens) is not used at all, the others expire after
  their ``ttl_without_listener`` seconds.

A change made with raw SQL text (``text("UPDATE …")``) is not seen; write reference
data through SQLAlchemy statements.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase

log = logging.getLogger(__name__)

T = TypeVar("T")

CHANNEL = "tongban_cache"
#: Execution options of a write that no cache depends on although its table is watched
#: (a token's last_used_at): ``stmt.execution_options(**CACHE_NEUTRAL)``.
CACHE_NEUTRAL: dict[str, Any] = {"tongban_cache_neutral": True}
_TOUCHED = "tongban.cache.touched"

#: The tables a cache may be built from. Every process sends a notification when it
#: commits a write to one of them, whether or not it imported the caches themselves (a
#: CLI command, a worker): the list lives here, in the kernel, not in the contexts.
WATCHED_TABLES = frozenset(
    {
        "matter",
        "matter_material",
        "matter_implementation",
        "jurisdiction",
        "city",
        "authority",
        "api_token",
        "account",
        "notify_contact",
    }
)

#: table name -> names of the caches built from it
_BY_TABLE: dict[str, set[str]] = {}
_CACHES: dict[str, Cache[Any]] = {}
_lock = threading.Lock()


class _Listener:
    """One LISTEN connection per database (URL) in this process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.live = False
        self.thread = threading.Thread(target=self._run, name="cache-listener", daemon=True)
        self.thread.start()

    def _conninfo(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).set(drivername="postgresql").render_as_string(False)

    def _run(self) -> None:
        import psycopg

        wait, warned = 0.5, False
        while True:
            try:
                with psycopg.connect(self._conninfo(), autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    drop_all(self.url)  # anything cached before may have missed a change
                    self.live, wait, warned = True, 0.5, False
                    for note in conn.notifies():
                        tables = [t for t in note.payload.split(",") if t]
                        if tables:
                            drop_tables(self.url, tables)
                        else:
                            drop_all(self.url)
            except Exception as exc:  # noqa: BLE001 - caches stay off until reconnected
                self.live = False
                drop_all(self.url)
                if "does not exist" in str(exc):  # the database was dropped: stop
                    with _lock:
                        _LISTENERS.pop(self.url, None)
                    return
                if not warned:
                    log.warning("cache listener for a database lost (%s); caches off", exc)
                    warned = True
            self.live = False
            drop_all(self.url)
            time.sleep(wait)
            wait = min(wait * 2, 30.0)


_LISTENERS: dict[str, _Listener] = {}
_URLS: dict[int, tuple[str, bool]] = {}  # id(engine) -> (url, is postgresql)


def _engine_key(conn: Connection) -> tuple[str, bool]:
    """The URL of `conn`'s database (the caches' key) and whether it is PostgreSQL."""
    engine = conn.engine
    known = _URLS.get(id(engine))
    if known is None:
        known = (engine.url.render_as_string(False), engine.dialect.name == "postgresql")
        _URLS[id(engine)] = known
    return known


#: session.info key: the transaction `_db` last answered for, and its answer.
_DB_OF = "tongban_cache_db"


def _db(session: Session) -> tuple[str, bool, Connection]:
    """The caches' key of `session`'s database, whether it is PostgreSQL, and the
    connection of its transaction (begun here if none is). A submission asks about a
    dozen times; `session.connection()` is asked once per transaction (issue 14)."""
    txn = session.get_transaction()
    if txn is not None and txn.is_active:
        known = session.info.get(_DB_OF)
        if known is not None and known[0] is txn:
            found: tuple[str, bool, Connection] = known[1]
            return found
    conn = session.connection()
    url, postgres = _engine_key(conn)
    session.info[_DB_OF] = (session.get_transaction(), (url, postgres, conn))
    return url, postgres, conn


def _listener_live(url: str) -> bool:
    listener = _LISTENERS.get(url)
    if listener is None:
        with _lock:
            listener = _LISTENERS.get(url)
            if listener is None:
                listener = _LISTENERS[url] = _Listener(url)
    return listener.live


class Cache(Generic[T]):
    """Values of type T by key, per database, dropped when a watched table changes."""

    def __init__(
        self,
        name: str,
        *,
        tables: set[str],
        ttl: float,
        needs_listener: bool = False,
        ttl_without_listener: float = 5.0,
    ) -> None:
        unknown = tables - WATCHED_TABLES
        if unknown:
            raise ValueError(f"cache {name}: add {sorted(unknown)} to WATCHED_TABLES")
        self.name = name
        self.ttl = ttl
        self.needs_listener = needs_listener
        self.ttl_without_listener = ttl_without_listener
        self._entries: dict[tuple[str, Hashable], tuple[float, T]] = {}
        self._generation: dict[str, int] = {}
        self.hits = 0
        self.misses = 0
        _CACHES[name] = self
        for t in tables:
            _BY_TABLE.setdefault(t, set()).add(name)

    def get(self, session: Session, key: Hashable, load: Callable[[], T]) -> T:
        """The cached value of `key`, or `load()` (stored when it may be)."""
        url, postgres, conn = _db(session)
        if conn.info.get(_TOUCHED):  # this transaction changed what we cache: read it
            return load()
        if postgres:
            if not _listener_live(url):
                return load()
            ttl = self.ttl
        elif self.needs_listener:
            return load()
        else:
            ttl = self.ttl_without_listener
        now = time.monotonic()
        found = self._entries.get((url, key))
        if found is not None and found[0] > now:
            self.hits += 1
            return found[1]
        self.misses += 1
        generation = self._generation.get(url, 0)
        value = load()
        if self._generation.get(url, 0) == generation:
            self._entries[(url, key)] = (now + ttl, value)
        return value

    def put(self, session: Session, key: Hashable, value: T) -> None:
        """Replace the entry of `key` (e.g. after this process updated a field of it)."""
        url, _postgres, _conn = _db(session)
        if (url, key) in self._entries:
            self._entries[(url, key)] = (self._entries[(url, key)][0], value)

    def forget(self, session: Session, key: Hashable) -> None:
        url, _postgres, _conn = _db(session)
        self._entries.pop((url, key), None)

    def drop(self, url: str) -> None:
        self._generation[url] = self._generation.get(url, 0) + 1
        for k in [k for k in self._entries if k[0] == url]:
            self._entries.pop(k, None)


def drop(url: str, names: list[str]) -> None:
    for n in names:
        cache = _CACHES.get(n)
        if cache is not None:
            cache.drop(url)


def drop_tables(url: str, tables: list[str]) -> None:
    """Drop the caches built from any of `tables`."""
    drop(url, sorted({n for t in tables for n in _BY_TABLE.get(t, ())}))


def drop_all(url: str) -> None:
    drop(url, list(_CACHES))


def _url_of(conn: Connection) -> str:
    return _engine_key(conn)[0]


@event.listens_for(Engine, "before_execute")
def _watch(
    conn: Connection,
    clause: Any,
    multiparams: Any,
    params: Any,
    execution_options: Any,
) -> None:
    if not isinstance(clause, UpdateBase):
        return
    table = getattr(getattr(clause, "table", None), "name", "")
    if table not in WATCHED_TABLES:
        return
    if execution_options.get("tongban_cache_neutral") or clause.get_execution_options().get(
        "tongban_cache_neutral"
    ):
        return
    touched: set[str] = conn.info.setdefault(_TOUCHED, set())
    touched.add(table)
    drop_tables(_url_of(conn), [table])


@event.listens_for(Engine, "commit")
def _before_commit(conn: Connection) -> None:
    touched: set[str] | None = conn.info.pop(_TOUCHED, None)
    if not touched:
        return
    url = _url_of(conn)
    if conn.dialect.name == "postgresql":
        # Delivered to every listener when this transaction commits (never if it fails).
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, ",".join(sorted(touched))))
        finally:
            cursor.close()
    drop_tables(url, sorted(touched))


@event.listens_for(Engine, "rollback")
def _after_rollback(conn: Connection) -> None:
    touched: set[str] | None = conn.info.pop(_TOUCHED, None)
    if touched:
        drop_tables(_url_of(conn), sorted(touched))


def settle(conn: Connection) -> None:
    """Forget that `conn`'s open transaction changed watched tables, as if it had
    committed (tests whose one transaction is rolled back at the end, after setting up
    rows that a committed setup would have left; the caches were dropped already)."""
    conn.info.pop(_TOUCHED, None)


def live(session: Session) -> bool:
    """Whether this process's caches of `session`'s database are in use (PostgreSQL:
    its listener is connected; SQLite: always, for the caches that allow it)."""
    url, postgres, _conn = _db(session)
    return _listener_live(url) if postgres else True
