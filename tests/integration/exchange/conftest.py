"""Two nodes in one process, each with its own database (SQLite files, or two PostgreSQL
databases), its own settings and app, talking over HTTP through in-process transports
(httpx -> ASGI), so that the signed requests, the inbox and the dispatcher are the real
ones. Node A serves 上海 and 安徽, node B 江苏 and 浙江."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, delete, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from tongban.cases import service as cases
from tongban.cases.models import Case
from tongban.config import Settings
from tongban.contexts import build_node
from tongban.db import make_engine, session_factory
from tongban.exchange import service as exchange
from tongban.exchange.federation import dump, load
from tongban.exchange.models import OutboxMessage
from tongban.exchange.transport import HttpTransport
from tongban.migrate import upgrade

from builders import SIMPLE_FORM, SIMPLE_MATTER, make_officer, make_resident, upload

PG_URL = os.environ.get("TONGBAN_TEST_PG_URL")
JURISDICTIONS = {"node-a": ("310000", "340000"), "node-b": ("320000", "330000")}


def _pg_database() -> tuple[str, str]:
    assert PG_URL
    name = f"tongban_fed_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(PG_URL).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False), name


def _drop(name: str) -> None:
    assert PG_URL
    admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class Hosts(httpx.BaseTransport):
    """Routes each request to the in-process app of its host; unknown or 'down' hosts
    fail as a refused connection would."""

    def __init__(self) -> None:
        self.apps: dict[str, TestClient] = {}
        self.down: set[str] = set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in self.down or host not in self.apps:
            raise httpx.ConnectError(f"connection refused: {host}", request=request)
        r = self.apps[host].request(
            request.method, str(request.url), content=request.read(), headers=request.headers
        )
        return httpx.Response(r.status_code, headers=r.headers, content=r.content)


@dataclass
class FedNode:
    id: str
    host: str
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    remote: exchange.Remote
    upload_root: Path

    def session(self) -> Session:
        return self.factory()

    def dispatch(self) -> int:
        return exchange.dispatch_pending(
            self.factory,
            self.settings.served_jurisdictions,
            remote=self.remote,
            max_attempts=self.settings.exchange_max_attempts,
            backoff=(0.0,),
        )

    def outbox(self, **where: Any) -> list[OutboxMessage]:
        with self.factory() as s:
            q = s.query(OutboxMessage).filter_by(**where).order_by(OutboxMessage.created_at)
            return list(q)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def fed_dbs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Two migrated databases with the reference data and the catalogue."""
    from tongban.catalog import service as catalog
    from tongban.regions import service as regions

    names: list[str] = []
    urls: dict[str, str] = {}
    root = tmp_path_factory.mktemp("fed")
    for node_id in JURISDICTIONS:
        if request.param == "sqlite":
            url = f"sqlite:///{root / node_id}.db"
        else:
            if not PG_URL:
                pytest.skip("PostgreSQL tier skipped: TONGBAN_TEST_PG_URL is not set")
            url, name = _pg_database()
            names.append(name)
        upgrade(url)
        engine = make_engine(url)
        # Loaded as the node (its sessions carry its settings), before it has a federation.
        seeding = build_node(Settings(database_url=url, node_id=node_id), session_factory(engine))
        with seeding.transaction() as s:
            regions.load_reference_data(s)
            catalog.load_catalogue(s)
        engine.dispose()
        urls[node_id] = url
    yield urls
    for name in names:
        _drop(name)


@pytest.fixture
def hosts() -> Hosts:
    return Hosts()


@pytest.fixture
def fed(fed_dbs: dict[str, str], tmp_path: Path, hosts: Hosts) -> Iterator[dict[str, FedNode]]:
    """Nodes A and B: keys generated, federation file written, apps mounted, outboxes
    emptied of earlier tests' messages."""
    from tongban.kernel.node import SETTINGS_KEY, bind_settings
    from tongban.keys import service as keys
    from tongban.web.app import create_app

    fed_path = tmp_path / "federation.toml"
    entries = []
    engines = {}
    for node_id, url in fed_dbs.items():
        engine = make_engine(url)
        engines[node_id] = engine
        # A session of the node (it carries the node's settings: the key's algorithm).
        with Session(engine, info={SETTINGS_KEY: Settings(node_id=node_id)}) as s:
            s.execute(delete(OutboxMessage))
            row = keys.current_row(s, "node", node_id) or keys.create_key(s, "node", node_id)
            jwk = {k: v for k, v in keys.public_key(row).jwk().items() if k != "alg"}
            alg = row.alg
            s.commit()
        entries.append(
            {
                "id": node_id,
                "name": node_id,
                "jurisdictions": list(JURISDICTIONS[node_id]),
                "base_url": f"http://{node_id}.test",
                "alg": alg,
                "public_key": jwk,
            }
        )
    fed_path.write_text(dump("test", entries), encoding="utf-8")
    federation = load(fed_path)
    client = httpx.Client(transport=hosts)
    nodes = {}
    for node_id, url in fed_dbs.items():
        upload_root = tmp_path / node_id
        settings = Settings(
            database_url=url,
            secret_key="test-secret",
            upload_dir=upload_root / "tongban-test-uploads",
            max_upload_bytes=200_000,
            embedded_worker=False,
            node_id=node_id,
            served_jurisdictions=",".join(JURISDICTIONS[node_id]),
            federation_file=fed_path,
            exchange_max_attempts=3,
            # In-process nodes on a loaded CI machine: a query's deadline is a test's
            # subject only where the test sets a short one itself.
            query_timeout_ms=15_000,
        )
        # The node's own sessions carry its settings (kernel.node.settings_of).
        factory = bind_settings(
            sessionmaker(bind=engines[node_id], expire_on_commit=False), settings
        )
        remote = exchange.Remote(
            node_id=node_id,
            federation=federation,
            transport=HttpTransport(client=client),
            key=lambda s, n=node_id: exchange.node_key(s, n),
            settings=settings,
        )
        app = create_app(build_node(settings, factory))
        hosts.apps[f"{node_id}.test"] = TestClient(app, raise_server_exceptions=False)
        nodes[node_id] = FedNode(
            node_id, f"{node_id}.test", settings, engines[node_id], factory, remote, upload_root
        )
    yield nodes
    client.close()
    for engine in engines.values():
        engine.dispose()


# --- helpers the tests get through the `tools` fixture ---------------------------------


def drain(*nodes: Any) -> int:
    """Dispatch on every node until nothing more is delivered."""
    total = 0
    for _ in range(10):
        n = sum(node.dispatch() for node in nodes)
        if n == 0:
            return total
        total += n
    raise AssertionError("messages keep coming")


def submit(a: Any) -> tuple[Any, Any]:
    with a.session() as s:
        resident = make_resident(s, "340100")
        att = upload(s, resident, tmp=a.upload_root)
        case = cases.submit_online(
            s,
            resident,
            cases.Application(
                matter_code=SIMPLE_MATTER,
                competent_jurisdiction="320000",
                competent_city="320500",
                form_data=dict(SIMPLE_FORM),
                consent=True,
                attachment_ids=[att.id],
            ),
        )
        s.commit()
        return case, resident


def stored_case(node: Any, number: str) -> Case | None:
    with node.session() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        if case is not None:
            _ = (case.events, case.attachments)
        return case


def deliver_case(node: Any, case_id: Any) -> None:
    """Officers of the competent authority on `node` take a forwarded case from submitted
    to delivered, one commit a step: five `case.status_changed` (seq 3 to 7) queued."""
    with node.session() as s:
        reviewer = make_officer(s, "320500-housing_fund", duty="reviewer")
        approver = make_officer(s, "320500-housing_fund")
        for actor, action in (
            (reviewer, "accept"),
            (reviewer, "start_review"),
            (approver, "approve"),
            (approver, "issue_result"),
            (approver, "deliver"),
        ):
            cases.act(s, s.get(type(actor), actor.id), case_id, action)
            s.commit()


def envelope(msg_type: str, source: str, target: str, node: str, payload: dict[str, Any]) -> Any:
    """A well-formed envelope of a message from `node` (signed by the caller)."""
    from datetime import UTC, datetime

    return {
        "id": str(uuid.uuid4()),
        "type": msg_type,
        "source_node": node,
        "source_jurisdiction": source,
        "target_jurisdiction": target,
        "created_at": datetime.now(UTC).isoformat(),
        "version": 1,
        "payload": payload,
    }


def signing_key(node: Any) -> Any:
    """`node`'s message-signing key."""
    with node.session() as s:
        key = exchange.node_key(s, node.id)
        s.commit()
        return key


@pytest.fixture
def tools() -> Any:
    """drain(*nodes), submit(node) -> (case, resident), stored_case(node, number),
    deliver_case(node, case_id), envelope(type, source, target, node, payload),
    signing_key(node)."""
    import types

    return types.SimpleNamespace(
        drain=drain,
        submit=submit,
        stored_case=stored_case,
        deliver_case=deliver_case,
        envelope=envelope,
        signing_key=signing_key,
    )
