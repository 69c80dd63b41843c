"""The card across two nodes in one process (SQLite and PostgreSQL), each with its own
database, settings and app, talking over signed HTTP through in-process transports: node
A serves 上海 and 江苏 (南京), node B 浙江 (杭州) and 安徽.

A 南京 senior's code, made on their device from a credential A signed, is admitted at a
杭州 museum gate that syncs only with B (the senior concession of 杭州's rules); when the
card is reported lost on A, A's revocation list reaches B as a published state and the
gate, after its next sync, refuses the code; the gate's uses reach A, exactly once, as
the holder's 用卡记录. A revocation list about a jurisdiction its sender does not serve,
or not signed by that jurisdiction's key, is refused. The venue staff's scan page on B
verifies with what B holds of A's cards, and its uses reach A too."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from stdnum.cn import ric

from nodes import node_databases
from tongban.card import federation, gateauth, service
from tongban.card import gate as gates
from tongban.card.device import Device
from tongban.card.models import CardUse, ReceivedRevocations, ReceivedRevocationsVersion
from tongban.card.verifier import Refusal
from tongban.config import Settings
from tongban.crypto.signing import b64u
from tongban.db import make_engine
from tongban.exchange import service as exchange
from tongban.exchange.federation import dump, load
from tongban.exchange.models import OutboxMessage
from tongban.exchange.transport import HttpTransport
from tongban.identity.models import Account
from tongban.migrate import upgrade

from builders import make_resident

JURISDICTIONS = {"node-a": ("310000", "320000"), "node-b": ("330000", "340000")}
_n = itertools.count(300)


class Hosts(httpx.BaseTransport):
    """Routes each request to the in-process app of its host."""

    def __init__(self) -> None:
        self.apps: dict[str, TestClient] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        app = self.apps.get(request.url.host)
        if app is None:
            raise httpx.ConnectError(f"connection refused: {request.url.host}", request=request)
        r = app.request(
            request.method, str(request.url), content=request.read(), headers=request.headers
        )
        return httpx.Response(r.status_code, headers=r.headers, content=r.content)


@dataclass
class FedNode:
    id: str
    host: str
    settings: Settings
    factory: sessionmaker[Session]
    remote: exchange.Remote
    client: TestClient

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


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def fed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, FedNode]]:
    root = tmp_path_factory.mktemp("cardfed")
    with node_databases(request.param, len(JURISDICTIONS), "card") as pg_urls:
        urls = pg_urls or [f"sqlite:///{root / node_id}.db" for node_id in JURISDICTIONS]
        yield from _federation(root, dict(zip(JURISDICTIONS, urls, strict=True)))


def _federation(root: Path, urls: dict[str, str]) -> Iterator[dict[str, FedNode]]:
    """The nodes on their databases (`urls` by node id), migrated and loaded, each an
    in-process app the others reach over signed HTTP; disposed at the end."""
    from tongban.catalog import service as catalog
    from tongban.contexts import build_node
    from tongban.kernel.node import bind_settings
    from tongban.keys import service as keys
    from tongban.regions import service as regions
    from tongban.web.app import create_app

    engines: dict[str, Engine] = {}
    entries = []
    for node_id, url in urls.items():
        upgrade(url)
        engine = make_engine(url)
        plain = Settings(database_url=url, secret_key="test-secret", node_id=node_id)
        with bind_settings(sessionmaker(bind=engine), plain)() as s:
            regions.load_reference_data(s)
            catalog.load_catalogue(s)
            row = keys.current_row(s, "node", node_id) or keys.create_key(s, "node", node_id)
            jwk = {k: v for k, v in keys.public_key(row).jwk().items() if k != "alg"}
            alg = row.alg
            s.commit()
        engines[node_id] = engine
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
    fed_path = root / "federation.toml"
    fed_path.write_text(dump("test", entries), encoding="utf-8")
    federation_ = load(fed_path)
    hosts = Hosts()
    http = httpx.Client(transport=hosts)
    nodes = {}
    for node_id, engine in engines.items():
        settings = Settings(
            database_url=str(engine.url.render_as_string(hide_password=False)),
            secret_key="test-secret",
            upload_dir=root / node_id / "uploads",
            embedded_worker=False,
            node_id=node_id,
            served_jurisdictions=",".join(JURISDICTIONS[node_id]),
            federation_file=fed_path,
            exchange_max_attempts=3,
            public_url=f"http://{node_id}.test",
        )
        factory = bind_settings(sessionmaker(bind=engine, expire_on_commit=False), settings)
        remote = exchange.Remote(
            node_id=node_id,
            federation=federation_,
            transport=HttpTransport(client=http),
            key=lambda s, n=node_id: exchange.node_key(s, n),
            settings=settings,
        )
        client = TestClient(
            create_app(build_node(settings, factory)), raise_server_exceptions=False
        )
        client.base_url = httpx.URL(f"http://{node_id}.test")
        hosts.apps[f"{node_id}.test"] = client
        nodes[node_id] = FedNode(node_id, f"{node_id}.test", settings, factory, remote, client)
    yield nodes
    http.close()
    for engine in engines.values():
        engine.dispose()


def drain(*nodes: FedNode) -> int:
    total = 0
    for _ in range(10):
        n = sum(node.dispatch() for node in nodes)
        if n == 0:
            return total
        total += n
    raise AssertionError("messages keep coming")


def _nanjing_senior(a: FedNode) -> tuple[Any, Any, Device]:
    """A 南京 resident born in 1950 with a card and an enrolled device, on node A."""
    body = "320121" + "19500307" + f"{next(_n) % 1000:03d}"
    with a.session() as s:
        holder = make_resident(s, "320100", id_number=body + ric.calc_check_digit(body + "0"))
        card = service.issue(s, service.holder_of(holder))
        device = Device.generate("ES256")
        device.credential = service.enrol(s, holder, device.public_jwk()).data
        s.commit()
        return holder, card, device


def _hangzhou_gate(b: FedNode, tmp: Path, gate_id: str) -> Path:
    state = tmp / gate_id
    config = gates.init(state, gate_id, "330100-museum", f"http://{b.host}")
    with b.session() as s:
        gateauth.register(s, gate_id, "330100-museum", config.public_jwk())
        s.commit()
    return state


def test_a_nanjing_code_is_admitted_at_a_hangzhou_gate_and_refused_once_lost(
    fed: dict[str, FedNode], tmp_path: Path
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    holder, card, device = _nanjing_senior(a)
    # A's issuing key for 江苏 travels to B (licences publish it); A's revocation list of
    # 江苏 too (the periodic refresh; a change publishes it at once).
    with a.session() as s:
        assert federation.publish_all(s) >= 1
        s.commit()
    drain(a, b)
    with b.session() as s:
        held = s.get(ReceivedRevocations, "320000")
        assert held is not None and held.source_node == "node-a" and held.count == 0

    state = _hangzhou_gate(b, tmp_path, "hz-museum-fed-1")
    report = gates.sync(state, client=b.client)
    assert report.failures == [] and report.lists.get("320000") == 0
    gate = gates.load(state)
    now = int(time.time())
    verdict = gate.check(device.qr_text(now), now)
    assert verdict.admitted, verdict
    assert verdict.holder is not None and verdict.holder.jurisdiction == "320000"
    assert verdict.decision is not None and verdict.decision.rule == "hangzhou.museum.60-priority"
    assert "老年人" in verdict.message
    gate.close()

    # Reported lost on A: the new list is published when that commits.
    with a.session() as s:
        service.act(s, s.get(Account, holder.id), card.id, "report_lost")
        s.commit()
    drain(a, b)
    with b.session() as s:
        held = s.get(ReceivedRevocations, "320000")
        assert held is not None and held.count == 1
    report = gates.sync(state, client=b.client)
    assert report.lists["320000"] == 1
    gate = gates.load(state)
    refused = gate.check(device.qr_text(now + 30), now + 30)
    assert refused.reason is Refusal.REVOKED, refused
    gate.close()

    # Both uses were uploaded to B with the first sync after them and forwarded to A once.
    report = gates.sync(state, client=b.client)
    drain(a, b)
    with a.session() as s:
        uses = s.scalars(select(CardUse).where(CardUse.card_id == card.id)).all()
        assert sorted(u.admitted for u in uses) == [False, True]
        admitted = next(u for u in uses if u.admitted)
        assert (
            admitted.venue_name == "浙江省博物馆" and admitted.rule == "hangzhou.museum.60-priority"
        )
        history = service.history_of(s, s.get(Account, holder.id))
        assert len(history) == 2
    with b.session() as s:
        forwarded = s.scalars(
            select(OutboxMessage).where(OutboxMessage.type == federation.CARD_USED)
        ).all()
        assert len([m for m in forwarded if m.payload.get("gate_id") == "hz-museum-fed-1"]) == 2
    assert drain(a, b) == 0  # nothing left, nothing twice


def test_revocation_lists_from_the_wrong_sender_or_key_are_refused(
    fed: dict[str, FedNode],
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    _nanjing_senior(a)
    with a.session() as s:
        genuine = federation.revocations_payload(s, "320000")
        s.commit()
    drain(a, b)
    # B claims to publish 江苏's list: B does not serve 江苏.
    with b.session() as s:
        exchange.send(
            s, federation.REVOCATIONS_PUBLISHED, "330000", "310000", {**genuine, "seq": 9}
        )
        s.commit()
    b.dispatch()
    with b.session() as s:
        msg = s.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.type == federation.REVOCATIONS_PUBLISHED)
            .order_by(OutboxMessage.created_at.desc())
        ).first()
        assert msg is not None and msg.status in ("dead", "pending") and msg.last_error
        assert "not-allowed" in msg.last_error or "无权" in msg.last_error
    # A list of 浙江 signed by a key that is not 浙江's (made up here) is refused by A.
    from dataclasses import replace

    from tongban.card import codec
    from tongban.card.verifier import kid8
    from tongban.crypto.signing import generate

    forger = generate()
    lst = codec.RevocationList(
        codec.IssuerAlg.ED25519,
        "330000",
        kid8(forger.kid),
        int(time.time()),
        int(time.time()) + 3600,
        5,
        (),
    )
    forged = replace(lst, signature=forger.sign(lst.signing_input())).to_bytes()
    with b.session() as s:
        exchange.send(
            s,
            federation.REVOCATIONS_PUBLISHED,
            "330000",
            "310000",
            {"jurisdiction": "330000", "data": b64u(forged), "seq": 7},
        )
        s.commit()
    for _ in range(3):
        b.dispatch()
    with a.session() as s:
        assert s.get(ReceivedRevocations, "330000") is None
    with b.session() as s:
        forged_msg = s.scalars(
            select(OutboxMessage).where(
                OutboxMessage.type == federation.REVOCATIONS_PUBLISHED,
                OutboxMessage.source_jurisdiction == "330000",
            )
        ).all()
        assert forged_msg and all(m.status != "delivered" and m.last_error for m in forged_msg)
    with b.session() as s:
        s.execute(
            delete(OutboxMessage).where(OutboxMessage.type == federation.REVOCATIONS_PUBLISHED)
        )
        s.commit()


def test_a_scan_at_a_hangzhou_museum_verifies_on_its_node_and_reaches_the_cards_node(
    fed: dict[str, FedNode],
) -> None:
    """The venue staff's scan page verifies on the venue's node (B) with what B holds of
    the card's jurisdiction: A's keys through the trust list, A's revocation list as B
    received it. The use reaches A once, with the holder's city, as the holder's 用卡记录."""
    from tongban.card import scanning
    from tongban.identity import service as identity

    from builders import PASSWORD

    a, b = fed["node-a"], fed["node-b"]
    holder, card, device = _nanjing_senior(a)
    with a.session() as s:
        federation.publish_all(s)
        s.commit()
    drain(a, b)
    with b.session() as s:
        staff = identity.create_account(
            s,
            username=f"venue{next(_n)}",
            password=PASSWORD,
            role="venue_staff",
            display_name="检票员",
            jurisdiction_code="330000",
            city_code="330100",
        )
        scanning.grant(s, None, staff, "330100-museum")
        s.commit()
    token = b.client.post(
        "/api/v1/auth/token", data={"username": staff.username, "password": PASSWORD}
    ).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    now = int(time.time())

    def scan(at: int) -> Any:
        r = b.client.post("/api/v1/card/scan", json={"code": device.qr_text(at)}, headers=auth)
        assert r.status_code == 200, r.text
        return r.json()

    first = scan(now)
    assert first["admitted"] and first["rule"] == "hangzhou.museum.60-priority"
    assert first["holder"]["jurisdiction"] == "320000"

    with a.session() as s:
        service.act(s, s.get(Account, holder.id), card.id, "report_lost")
        s.commit()
    # Until A's new list reaches B, B cannot know (it verifies with what it holds) ...
    assert scan(now + 1)["admitted"]
    drain(a, b)
    # ... once it has, the code is refused as revoked.
    refused = scan(now + 2)
    assert not refused["admitted"] and refused["reason"] == "revoked"

    drain(a, b)  # the uses travel to A
    with a.session() as s:
        uses = s.scalars(select(CardUse).where(CardUse.card_id == card.id)).all()
        assert sorted(u.admitted for u in uses) == [False, True, True]
        assert {u.card_city for u in uses} == {"320100"}
        assert {u.gate_id for u in uses} == {scanning.scan_gate_id(staff)}
    assert drain(a, b) == 0


def test_a_gate_gets_a_delta_of_another_nodes_list_from_its_own_node(
    fed: dict[str, FedNode], tmp_path: Path
) -> None:
    """B relays A's 江苏 list; it keeps the list it replaced, so that a gate holding that
    one gets a delta onto it (carrying A's signature of the new list: B signs nothing)."""
    a, b = fed["node-a"], fed["node-b"]
    holder, card, device = _nanjing_senior(a)
    other, _, _ = _nanjing_senior(a)
    with a.session() as s:
        # Old phones' credentials, so that a delta is smaller than the list.
        for _ in range(8):
            service.enrol(s, s.get(Account, other.id), Device.generate("ES256").public_jwk())
        assert federation.publish_all(s) >= 1
        s.commit()
    drain(a, b)
    state = _hangzhou_gate(b, tmp_path, "hz-museum-fed-delta")
    first = gates.sync(state, client=b.client)
    # 8 old phones, and what the module's earlier tests revoked (still within validity).
    count = first.lists["320000"]
    assert first.failures == [] and count >= 8 and first.deltas == []
    with b.session() as s:
        held = s.get(ReceivedRevocations, "320000")
        assert held is not None
        base = (held.seq, int(held.iat.timestamp()))
    time.sleep(1.1)
    with a.session() as s:
        service.act(s, s.get(Account, holder.id), card.id, "report_lost")
        s.commit()
    drain(a, b)
    with b.session() as s:
        kept = s.get(ReceivedRevocationsVersion, ("320000", *base))
        assert kept is not None  # the list the gate holds, kept when the newer one came
        newest = s.get(ReceivedRevocations, "320000")
        assert newest is not None and newest.count == count + 1
        newest_data = bytes(newest.data)
    report = gates.sync(state, client=b.client)
    assert report.failures == [] and report.refused_deltas == []
    assert "320000" in report.deltas and report.lists["320000"] == count + 1
    # What the gate rebuilt is A's signed list, byte for byte.
    assert (state / gates.LISTS / "320000.bin").read_bytes() == newest_data
    gate = gates.load(state)
    now = int(time.time())
    assert gate.check(device.qr_text(now), now).reason is Refusal.REVOKED
    gate.close()
