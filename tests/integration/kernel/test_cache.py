"""Per-process caches (tongban.kernel.cache, issue 14): a cached token or reference row
is never used once it changed — in this process at once, and in another process as
soon as the changing transaction commits — and tokens are not cached where no other
process could tell us of a change (SQLite).

The PostgreSQL tests commit for real, so they run on a database of their own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from conftest import PG_URL, _create_pg_database, _drop_pg_database, _seed
from tongban.catalog import service as catalog
from tongban.catalog.models import MatterImplementation
from tongban.config import Settings
from tongban.contexts import build_node
from tongban.db import make_engine, session_factory
from tongban.identity import service as identity
from tongban.identity.models import ApiToken
from tongban.kernel import cache
from tongban.migrate import upgrade

from builders import PASSWORD, make_resident

MATTER, JURISDICTION = "YRD-GA-0002", "320000"


@pytest.fixture(scope="module")
def own_db() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("needs PostgreSQL (TONGBAN_TEST_PG_URL)")
    url, name = _create_pg_database()
    upgrade(url)
    engine = make_engine(url)
    _seed(engine)
    engine.dispose()
    yield url
    _drop_pg_database(name)


@pytest.fixture
def pg(own_db: str, tmp_path) -> Iterator[tuple[sessionmaker[Session], TestClient]]:  # type: ignore[no-untyped-def]
    from tongban.web.app import create_app

    settings = Settings(
        database_url=own_db,
        secret_key="test-secret",
        upload_dir=tmp_path / "uploads",
        embedded_worker=False,
    )
    engine = make_engine(own_db)
    node = build_node(settings, session_factory(engine))
    with node.session_factory() as s:  # the listener must be up before caching starts
        for _ in range(200):
            if cache.live(s):
                break
            time.sleep(0.02)
        assert cache.live(s), "the cache listener did not connect"
    with TestClient(create_app(node)) as client:
        yield node.session_factory, client
    engine.dispose()


def _in_another_process(url: str, body: str) -> None:
    """Run `body` (with `s`, a session of `url`, committed at the end) in a new Python."""
    code = "import sys\nfrom tongban.db import make_engine, session_factory\n"
    code += "from sqlalchemy.orm import Session\n"
    code += "import tongban.contexts  # only what any process imports (a CLI command)\n"
    code += "with Session(make_engine(sys.argv[1])) as s:\n"
    code += textwrap.indent(textwrap.dedent(body), "    ") + "\n    s.commit()\n"
    r = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _resident_token(
    factory: sessionmaker[Session], client: TestClient
) -> tuple[str, dict[str, str]]:
    with factory() as s:
        resident = make_resident(s)
        username = resident.username
        s.commit()
    r = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return username, {"Authorization": f"Bearer {r.json()['access_token']}"}


def _hits() -> int:
    return cache._CACHES["identity.token"].hits


def test_a_token_is_cached_and_its_revocation_is_refused_on_the_next_request(pg) -> None:  # type: ignore[no-untyped-def]
    factory, client = pg
    _username, h = _resident_token(factory, client)
    assert client.get("/api/v1/me", headers=h).status_code == 200
    before = _hits()
    assert client.get("/api/v1/me", headers=h).status_code == 200
    assert _hits() > before  # served from the cache
    assert client.post("/api/v1/auth/revoke", headers=h).status_code == 204
    r = client.get("/api/v1/me", headers=h)
    assert r.status_code == 401 and r.json()["type"].endswith("invalid-token")


def test_a_token_revoked_by_another_process_is_refused_on_the_next_request(pg, own_db) -> None:  # type: ignore[no-untyped-def]
    factory, client = pg
    username, h = _resident_token(factory, client)
    for _ in range(2):
        assert client.get("/api/v1/me", headers=h).status_code == 200
    with factory() as s:
        account_id = identity.account_by_username(s, username).id  # type: ignore[union-attr]
    _in_another_process(
        own_db,
        f"""
        import uuid
        from tongban.identity import service
        service.revoke_all_tokens(s, uuid.UUID("{account_id}"))
        """,
    )
    r = client.get("/api/v1/me", headers=h)
    assert r.status_code == 401, "a token revoked elsewhere was still accepted"


def test_an_account_disabled_by_another_process_loses_its_cached_token(pg, own_db) -> None:  # type: ignore[no-untyped-def]
    factory, client = pg
    username, h = _resident_token(factory, client)
    for _ in range(2):
        assert client.get("/api/v1/me", headers=h).status_code == 200
    _in_another_process(
        own_db,
        f"""
        from sqlalchemy import update
        from tongban.identity.models import Account
        s.execute(update(Account).where(Account.username == "{username}").values(is_active=False))
        """,
    )
    assert client.get("/api/v1/me", headers=h).status_code == 401


def test_a_catalogue_change_is_seen_at_once_here_and_from_another_process(pg, own_db) -> None:  # type: ignore[no-untyped-def]
    factory, _client = pg
    matter_cache = cache._CACHES["catalog.implementation"]

    def limit() -> int:
        with factory() as s:
            return catalog.time_limit_for(s, catalog.matter_ref(s, MATTER), JURISDICTION)

    def set_limit(days: int) -> None:
        with factory() as s:
            s.execute(
                update(MatterImplementation)
                .where(
                    MatterImplementation.matter_code == MATTER,
                    MatterImplementation.jurisdiction_code == JURISDICTION,
                )
                .values(time_limit_days=days)
            )
            s.commit()

    with factory() as s:
        impl = s.scalar(
            select(MatterImplementation).where(
                MatterImplementation.matter_code == MATTER,
                MatterImplementation.jurisdiction_code == JURISDICTION,
            )
        )
        assert impl is not None
        original = impl.time_limit_days
    try:
        first = limit()
        hits = matter_cache.hits
        assert limit() == first and matter_cache.hits > hits  # cached
        set_limit(first + 3)  # this process: dropped at once
        assert limit() == first + 3
        _in_another_process(
            own_db,
            f"""
            from sqlalchemy import update
            from tongban.catalog.models import MatterImplementation as M
            s.execute(update(M).where(M.matter_code == "{MATTER}",
                      M.jurisdiction_code == "{JURISDICTION}").values(time_limit_days={first + 5}))
            """,
        )
        assert limit() == first + 5
    finally:
        set_limit(original)


def test_a_rolled_back_change_is_not_cached_and_its_writer_reads_its_own(pg) -> None:  # type: ignore[no-untyped-def]
    factory, _client = pg
    with factory() as s:
        before = catalog.matter_ref(s, MATTER).name
    with factory() as s:
        from tongban.catalog.models import Matter

        s.execute(update(Matter).where(Matter.code == MATTER).values(name="临时名称"))
        assert catalog.matter_ref(s, MATTER).name == "临时名称"  # its own change
        with factory() as other:
            assert catalog.matter_ref(other, MATTER).name == before  # not yet anyone else's
        s.rollback()
    with factory() as s:
        assert catalog.matter_ref(s, MATTER).name == before


def test_a_session_reads_its_own_change_in_each_of_its_transactions(pg) -> None:  # type: ignore[no-untyped-def]
    """The caches ask a session for its connection once per transaction: a session that
    rolls back and changes again reads its new change, not the cache."""
    from tongban.catalog.models import Matter

    factory, _client = pg
    with factory() as s:
        before = catalog.matter_ref(s, MATTER).name
    with factory() as s:
        s.execute(update(Matter).where(Matter.code == MATTER).values(name="临时名称一"))
        assert catalog.matter_ref(s, MATTER).name == "临时名称一"
        s.rollback()
        assert catalog.matter_ref(s, MATTER).name == before  # cached again
        s.execute(update(Matter).where(Matter.code == MATTER).values(name="临时名称二"))
        assert catalog.matter_ref(s, MATTER).name == "临时名称二"
        s.rollback()


def test_tokens_are_not_cached_on_sqlite(client, session, db_url) -> None:  # type: ignore[no-untyped-def]
    if not db_url.startswith("sqlite"):
        pytest.skip("the SQLite rule")
    resident = make_resident(session)
    r = client.post(
        "/api/v1/auth/token", data={"username": resident.username, "password": PASSWORD}
    )
    h = {"Authorization": f"Bearer {r.json()['access_token']}"}
    before = _hits()
    for _ in range(3):
        assert client.get("/api/v1/me", headers=h).status_code == 200
    assert _hits() == before
    assert session.scalar(select(ApiToken.last_used_at)) is not None
