"""Test fixtures: databases built by the real migrations, on SQLite and on PostgreSQL,
one transaction per test rolled back at the end.

PostgreSQL tests need TONGBAN_TEST_PG_URL (a server URL whose user may create
databases; `make test` starts a throwaway server when it can). With
TONGBAN_REQUIRE_PG=1 (CI) a missing server fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from tongban.audit import sealer as audit_sealer
from tongban.config import Settings
from tongban.contexts import build_node
from tongban.db import make_engine, session_factory
from tongban.identity import service as identity_service
from tongban.kernel.node import Node, bind_settings
from tongban.migrate import upgrade

# Each xdist worker searches for node ports in a range of its own. A module's
# parametrised node fixture runs on whichever workers its tests land on, so two workers
# may start the same module's nodes at the same moment; both searching from the module's
# `start` would find the same free ports before either node binds them. Patched here,
# before the test modules import it.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
if _WORKER:
    from tongban import devserver

    _free_port_block = devserver.free_port_block

    def _worker_port_block(count: int, start: int = 21000, step: int = 37) -> int:
        return _free_port_block(count, start + 7000 * _WORKER, step)

    devserver.free_port_block = _worker_port_block

# One Hypothesis profile for the whole suite: no per-example deadline (two xdist workers
# beside PostgreSQL and Chromium on a small machine make timings meaningless: a slow
# example is not a failure) and no too_slow health check. `make test` (scripts/test.sh)
# uses "ci", which also derandomizes: the same examples on every run, so a red run is
# reproducible; a developer's plain `pytest` explores new ones. A test's own @settings
# still overrides these (max_examples, phases).
hypothesis_settings.register_profile(
    "dev", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
hypothesis_settings.register_profile(
    "ci", parent=hypothesis_settings.get_profile("dev"), derandomize=True
)
hypothesis_settings.load_profile(os.environ.get("TONGBAN_HYPOTHESIS_PROFILE", "dev"))

PG_URL = os.environ.get("TONGBAN_TEST_PG_URL")
REQUIRE_PG = os.environ.get("TONGBAN_REQUIRE_PG") == "1"

# Argon2 with its production cost makes every test account take ~50 ms; the algorithm
# is the same, only cheaper.
identity_service._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def pytest_report_header(config: pytest.Config) -> list[str]:
    if PG_URL:
        return [f"PostgreSQL tier: {make_url(PG_URL).render_as_string(hide_password=True)}"]
    return ["!!! PostgreSQL tier SKIPPED: TONGBAN_TEST_PG_URL is not set !!!"]


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if not PG_URL:
        terminalreporter.write_sep("!", "PostgreSQL tests were SKIPPED (no server)", red=True)


# The audit chain's background seals (PostgreSQL) asked for by a test's commits run
# before the next test starts: a seal gathers commits for a few milliseconds
# (audit.sealer.LINGER), and a test's staged entries committed but not sealed yet would
# be chained by the next test's transaction (which chains every committed staged row it
# sees) or sealed under a head that a test's clean-up has put back.
# Drained once a test's fixtures are set up (module fixtures commit too) and once it is
# torn down; a drain with nothing asked returns at once.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield
    audit_sealer.drain(10)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield
    audit_sealer.drain(30)


def _create_pg_database() -> tuple[str, str]:
    assert PG_URL
    base = make_url(PG_URL)
    name = f"tongban_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(drivername="postgresql+psycopg", database=name).render_as_string(
        hide_password=False
    ), name


def _drop_pg_database(name: str) -> None:
    assert PG_URL
    admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _seed(engine: Engine) -> None:
    from tongban.catalog import service as catalog
    from tongban.regions import service as regions

    url = engine.url.render_as_string(hide_password=False)
    node = build_node(Settings(database_url=url), session_factory(engine))
    with node.transaction() as s:
        regions.load_reference_data(s)
        catalog.load_catalogue(s)


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, seeded database per backend, shared by the whole run."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        upgrade(url)
        engine = make_engine(url)
        _seed(engine)
        engine.dispose()
        yield url
        return
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("TONGBAN_REQUIRE_PG=1 but TONGBAN_TEST_PG_URL is not set")
        pytest.skip("PostgreSQL tier skipped: TONGBAN_TEST_PG_URL is not set")
    url, name = _create_pg_database()
    upgrade(url)
    engine = make_engine(url)
    _seed(engine)
    engine.dispose()
    yield url
    _drop_pg_database(name)


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    trans = conn.begin()
    yield conn
    trans.rollback()
    conn.close()


@pytest.fixture
def factory(connection: Connection, settings: Settings) -> sessionmaker[Session]:
    """Sessions joined to the test's transaction: their commits are savepoints. They
    carry the test's `settings` (kernel.node.settings_of), like a node's sessions."""
    return bind_settings(
        sessionmaker(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        ),
        settings,
    )


@pytest.fixture
def committing_factory(engine: Engine, settings: Settings) -> sessionmaker[Session]:
    """Sessions of the test's node on their own connections, outside the test's
    transaction: their commits are real (concurrency tests), so the test cleans up."""
    return build_node(settings, session_factory(engine)).session_factory


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    s = factory()
    yield s
    s.close()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        secret_key="test-secret",
        upload_dir=tmp_path / "uploads",
        max_upload_bytes=200_000,
        embedded_worker=False,
    )


@pytest.fixture
def kernel_node(settings: Settings, factory: sessionmaker[Session]) -> Node:
    """This test's node: its settings, sessions in the test's transaction, every context.
    (Not named `node`: tests/e2e has a `node` fixture of its own, a CLI installation.)
    A test that needs other settings builds its own: `build_node(settings.model_copy(
    update={...}), factory)`."""
    return build_node(settings, factory)


@pytest.fixture
def app(kernel_node: Node):  # type: ignore[no-untyped-def]
    from tongban.web.app import create_app

    return create_app(kernel_node)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        yield c
