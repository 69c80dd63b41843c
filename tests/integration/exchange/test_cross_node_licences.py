"""E-licences across two nodes: a licence issued on node A (安徽) verifies online on node B
(江苏) once A's licence keys and status list have arrived there as signed messages;
revocation and key rotation on A reach B the same way; a status list not signed by the
issuer's key is refused; the embedded single node sends the same messages through its
outbox to one jurisdiction it serves, where they are applied and change nothing."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tongban.config import Settings
from tongban.crypto.signing import generate
from tongban.db import utcnow
from tongban.exchange import service as exchange
from tongban.exchange.federation import dump
from tongban.exchange.models import OutboxMessage
from tongban.kernel import numbering
from tongban.kernel.node import bind_settings
from tongban.keys import service as keys
from tongban.keys.models import SigningKey
from tongban.licences import domain, federation, handlers, status, trust
from tongban.licences import service as licences
from tongban.licences.federation_models import ForeignIssuer
from tongban.licences.models import Licence, StatusListToken
from tongban.licences.statuslist import INVALID, StatusList, sign_status_list

from builders import make_licence, make_officer, make_resident

LICENCE_TYPES = {federation.KEYS_PUBLISHED, federation.STATUS_LIST_PUBLISHED}


def _issue(node: Any) -> Licence:
    """A licence issued on `node` (安徽 公安) to a new 安徽 resident, committed."""
    with node.session() as s:
        lic = make_licence(s, make_resident(s, "340100"))
        s.commit()
        return lic


def _verify(node: Any, compact: str) -> licences.Verification:
    with node.session() as s:
        return licences.verify_presentation(s, compact)


def _verify_api(hosts: Any, node: Any, compact: str) -> dict[str, Any]:
    """POST /api/v1/licences/verify on the node's own app."""
    r = hosts.apps[node.host].post("/api/v1/licences/verify", json={"presentation": compact})
    assert r.status_code == 200, r.text
    return r.json()


def _rotate(node: Any, code: str = "340000") -> str:
    with node.session() as s:
        row = keys.rotate(s, "licence", code)
        s.commit()
        return row.kid


def _revoke(node: Any, lic: Licence) -> None:
    with node.session() as s:
        officer = make_officer(s, "340100-public_security")
        licences.change_status(s, officer, lic.id, "revoke", "以欺骗手段取得")
        s.commit()


def test_a_licence_issued_on_a_verifies_on_b_after_the_keys_and_list_arrive(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    new_kid = _rotate(a)  # a key B cannot know yet, whatever earlier tests did
    lic = _issue(a)
    assert lic.kid == new_kid

    # Queued on A for B (one message per node, carried by one of B's jurisdictions);
    # the status list too when this licence was the first of its list.
    queued = [m for m in a.outbox(status="pending") if m.type in LICENCE_TYPES]
    assert {m.target_jurisdiction for m in queued} == {"320000"}
    assert federation.KEYS_PUBLISHED in {m.type for m in queued}
    before = _verify(b, lic.compact)
    assert not before.valid and before.reason == "unknown_issuer"

    tools.drain(a, b)
    after = _verify(b, lic.compact)
    assert after.valid, after.detail
    assert after.jurisdiction == "340000" and after.status == "valid"
    assert after.licence_id == lic.identifier
    # The online API of B answers the same.
    body = _verify_api(hosts, b, lic.compact)
    assert body["valid"] is True and body["jurisdiction"] == "340000"
    with b.session() as s:
        # B holds the public half only, and A's issuer id for 安徽.
        row = s.get(SigningKey, new_kid)
        assert row is not None and row.private_pem is None and row.owner == "340000"
        known = s.get(ForeignIssuer, "340000")
        assert known is not None and known.node_id == "node-a"
        assert known.issuer == domain.issuer_id(a.settings.public_url, "340000")
        imported = s.scalar(select(StatusListToken).where(StatusListToken.uri == lic.status_uri))
        assert imported is not None and imported.own is False and imported.token
    # Applied once: delivering the same messages again changes nothing.
    assert tools.drain(a, b) == 0


def test_revocation_on_a_reaches_b(tools: Any, fed: dict[str, Any], hosts: Any) -> None:
    a, b = fed["node-a"], fed["node-b"]
    lic = _issue(a)
    tools.drain(a, b)
    assert _verify(b, lic.compact).valid

    _revoke(a, lic)
    sent = [m for m in a.outbox(status="pending") if m.type == federation.STATUS_LIST_PUBLISHED]
    assert len(sent) == 1 and sent[0].payload["uri"] == lic.status_uri
    assert "token" not in sent[0].payload  # attached when it leaves, as it is then
    assert _verify(b, lic.compact).valid  # B still holds the older list

    tools.drain(a, b)
    v = _verify(b, lic.compact)
    assert not v.valid and v.reason == "revoked" and v.status == "revoked"
    assert _verify_api(hosts, b, lic.compact)["reason"] == "revoked"


def test_rotation_on_a_old_and_new_licences_verify_on_b(tools: Any, fed: dict[str, Any]) -> None:
    a, b = fed["node-a"], fed["node-b"]
    old = _issue(a)
    tools.drain(a, b)
    _rotate(a)
    new = _issue(a)
    assert new.kid != old.kid
    tools.drain(a, b)
    assert _verify(b, old.compact).valid
    assert _verify(b, new.compact).valid
    with b.session() as s:
        old_row = s.get(SigningKey, old.kid)
        assert old_row is not None and old_row.retired_at is not None


def test_a_withdrawal_on_a_is_not_undone_by_an_older_key_set(
    tools: Any, fed: dict[str, Any]
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    lic = _issue(a)
    tools.drain(a, b)
    with a.session() as s:
        stale = federation.keys_payload(s, "340000")  # before the withdrawal
        keys.withdraw(s, lic.kid, at=lic.issued_at)
        s.commit()
    tools.drain(a, b)
    v = _verify(b, lic.compact)
    assert not v.valid and v.reason == "unknown_issuer"
    # The older key set arrives late (a replay): the withdrawal stays.
    with a.session() as s:
        exchange.send(s, federation.KEYS_PUBLISHED, "340000", "320000", stale)
        s.commit()
    tools.drain(a, b)
    assert _verify(b, lic.compact).reason == "unknown_issuer"


def _forged_list(
    issuer: Any, lic: Licence, key: Any, iss_code: str = "340000", iat: int = 5
) -> str:
    """A status list for `lic` signed with `key`, as if by `issuer` (a node)'s issuer id."""
    lst = StatusList(domain.STATUS_BITS, domain.STATUS_LIST_SIZE)
    lst.set(lic.status_index, INVALID)
    now = int(time.time())
    return sign_status_list(
        lst.encode(),
        lst.bits,
        lic.status_uri,
        key,
        iat=now + iat,
        exp=now + 3600,
        ttl=300,
        iss=domain.issuer_id(issuer.settings.public_url, iss_code),
    )


def test_a_status_list_not_signed_by_the_issuer_is_refused(tools: Any, fed: dict[str, Any]) -> None:
    a, b = fed["node-a"], fed["node-b"]
    lic = _issue(a)
    with a.session() as s:
        other, _row = keys.signing_key(s, "licence", "310000")  # 上海's key: trusted, not 安徽's
        federation.publish_keys(s, "310000")
        s.commit()
    tools.drain(a, b)
    assert _verify(b, lic.compact).valid

    forged = {
        "by another issuer": _forged_list(a, lic, other, "310000"),
        "by an unknown key": _forged_list(a, lic, generate()),
    }
    ids = {}
    with a.session() as s:
        for what, token in forged.items():
            msg = exchange.send(
                s,
                federation.STATUS_LIST_PUBLISHED,
                "340000",
                "320000",
                {"jurisdiction": "340000", "list_no": lic.status_list, "uri": lic.status_uri}
                | {"token": token},
            )
            ids[what] = msg.id
        s.commit()
    for _ in range(a.settings.exchange_max_attempts):
        a.dispatch()
    with a.session() as s:
        for what, msg_id in ids.items():
            msg = s.get(OutboxMessage, msg_id)
            assert msg is not None and msg.status == "dead", what
        errors = {what: s.get(OutboxMessage, i).last_error for what, i in ids.items()}  # type: ignore[union-attr]
    assert "409" in str(errors["by an unknown key"]) or "out-of-order" in str(
        errors["by an unknown key"]
    )
    # B still answers from the genuine list: the licence is valid.
    assert _verify(b, lic.compact).valid


def test_an_older_status_list_does_not_replace_a_newer_one(tools: Any, fed: dict[str, Any]) -> None:
    a, b = fed["node-a"], fed["node-b"]
    with a.session() as s:
        # a key valid since two hours ago, so that a list signed an hour ago verifies
        row = keys.rotate(s, "licence", "340000")
        row.not_before = utcnow() - timedelta(hours=2)
        s.commit()
    lic = _issue(a)
    with a.session() as s:
        key, _row = keys.signing_key(s, "licence", "340000")
        newer = _forged_list(a, lic, key)  # 安徽's key, says revoked, iat now + 5
    with a.session() as s:
        status.mark_changed(s, s.get(Licence, lic.id))  # type: ignore[arg-type]
        s.commit()
    tools.drain(a, b)
    # B holds a list signed now; a list signed at an earlier iat must not replace it.
    with b.session() as s:
        stored = s.scalar(select(StatusListToken).where(StatusListToken.uri == lic.status_uri))
        assert stored is not None and stored.token is not None
        held = stored.token
        stale = _forged_list(a, lic, key, iat=-3600)
        status.import_list(s, "340000", lic.status_list, lic.status_uri, stale)
        assert stored.token == held
        # A newer one does.
        status.import_list(s, "340000", lic.status_list, lic.status_uri, newer)
        assert stored.token == newer
        s.rollback()


def test_publish_keys_sends_the_current_set_to_a_node_that_joined_later(
    tools: Any, fed: dict[str, Any]
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    _issue(a)
    tools.drain(a, b)
    with a.session() as s:
        n_keys, n_lists = federation.publish_all(s)
        s.commit()
    # 安徽 (and 上海 if an earlier test made its key) to node B; every list of A.
    assert n_keys >= 1 and n_lists >= 1
    msgs = [m for m in a.outbox(status="pending") if m.type in LICENCE_TYPES]
    assert {m.target_jurisdiction for m in msgs} == {"320000"}
    assert tools.drain(a, b) == n_keys + n_lists


# --- the embedded single node ---------------------------------------------------------


def _licence_messages(session: Session) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.type.in_(LICENCE_TYPES))))


def test_the_single_node_default_sends_them_to_itself_and_they_change_nothing(
    session: Session, factory: sessionmaker[Session]
) -> None:
    """One code path: the embedded single node (no federation file, serving every
    jurisdiction) publishes through its outbox too, to one jurisdiction it serves other
    than the issuer's; delivered locally, the handler finds the jurisdiction is this
    node's own and applies nothing (no refusal, no dead letter)."""
    lic = make_licence(session, make_resident(session, "340100"))
    keys.rotate(session, "licence", "340000")
    officer = make_officer(session, "340100-public_security")
    licences.change_status(session, officer, lic.id, "suspend", "核查中")
    session.commit()
    sent = _licence_messages(session)
    # One key set and one list per commit (make_licence commits once, the rest once).
    assert sorted((m.type, m.payload["seq"]) for m in sent) == sorted(
        (t, seq) for t in LICENCE_TYPES for seq in (1, 2)
    )
    assert {(m.source_jurisdiction, m.target_jurisdiction) for m in sent} == {
        ("340000", "310000")  # the first jurisdiction served here that is not 安徽
    }
    row = session.get(StatusListToken, (lic.jurisdiction_code, lic.status_list))
    assert row is not None and row.own
    before = (row.uri, row.token, row.own)
    key_rows = {r.kid: (r.retired_at, r.not_after) for r in keys.public_rows(session, "licence")}

    assert exchange.dispatch_pending(factory) >= len(sent)
    session.expire_all()
    assert {m.status for m in _licence_messages(session)} == {"delivered"}
    # Nothing changed: no foreign issuer, no imported list or key, no received sequence.
    assert session.get(ForeignIssuer, "340000") is None
    row = session.get(StatusListToken, (lic.jurisdiction_code, lic.status_list))
    assert row is not None and (row.uri, row.token, row.own) == before
    assert {
        r.kid: (r.retired_at, r.not_after) for r in keys.public_rows(session, "licence")
    } == key_rows
    assert numbering.peek(session, "in:licence.keys:340000") == 0
    # The resend to other nodes (a node that joined later) has no one to go to here.
    assert federation.publish_all(session) == (0, 0)


def test_a_licence_message_about_a_jurisdiction_served_here_from_another_node_is_refused(
    session: Session,
) -> None:
    """What the single node's own messages may do, another node's may not."""
    key = generate()
    payload = {
        "jurisdiction": "340000",
        "issuer": "https://ah.node.example/issuers/340000",
        "keys": [{"jwk": key.public().jwk()}],
        "seq": 1,
    }
    sender = exchange.Sender("node-x", frozenset({"340000"}), "340000", "310000")
    with pytest.raises(exchange.Refused) as refused:
        exchange.check(session, federation.KEYS_PUBLISHED, payload, sender, 2)
    assert refused.value.reason == "not-allowed"

    class Remote:  # the handler's own defence, should a message get past the check
        source_jurisdiction = "340000"
        source_node = "node-x"

    with pytest.raises(handlers.Refused, match="issues for 340000 itself"):
        handlers.on_keys_published(session, payload, Remote())
    assert session.get(ForeignIssuer, "340000") is None


def test_the_same_steps_on_a_federated_node_do_send(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """The control of the single-node test above: in a federation the same steps go to
    one jurisdiction of every other node."""
    path = _federation_file(tmp_path / "federation.toml", None)
    node_a = Settings(
        secret_key="x", node_id="a", served_jurisdictions="340000", federation_file=path
    )
    with bind_settings(factory, node_a)() as session:  # a session of node A
        lic = make_licence(session, make_resident(session, "340100"))
        session.commit()
        sent = _licence_messages(session)
        assert sorted((m.type, m.target_jurisdiction) for m in sent) == sorted(
            (t, j) for t in LICENCE_TYPES for j in ("310000", "320000")
        )
        officer = make_officer(session, "340100-public_security")
        licences.change_status(session, officer, lic.id, "suspend", "核查中")
        licences.change_status(session, officer, lic.id, "reinstate", "核查完毕")
        session.commit()
    lists = [m for m in _licence_messages(session) if m.type == federation.STATUS_LIST_PUBLISHED]
    assert len(lists) == 4  # two changes in one transaction: one message per node


def test_keys_published_records_the_announced_issuer(factory: sessionmaker[Session]) -> None:
    """Another node's issuer id (built from its public URL, not ours) is what B's trust
    list uses for that jurisdiction."""
    key = generate()
    node_b = Settings(secret_key="x", node_id="b", served_jurisdictions="320000,330000")

    class Msg:
        source_jurisdiction = "340000"
        source_node = "a"

    payload = {
        "jurisdiction": "340000",
        "issuer": "https://ah.node.example/issuers/340000",
        "keys": [{"jwk": key.public().jwk(), "not_before": "2026-01-01T00:00:00+00:00"}],
    }
    with bind_settings(factory, node_b)() as session:  # a session of node B
        handlers.on_keys_published(session, payload, Msg())
        t = trust.local_trust(session)
    issuer = t.issuer_of_jurisdiction("340000")
    assert issuer is not None and issuer.iss == "https://ah.node.example/issuers/340000"
    assert t.key_for(issuer.iss, key.kid, int(time.time())) is not None


# --- the trust-root node ---------------------------------------------------------------


def _federation_file(path: Path, trust_root: str | None) -> Path:
    jwk = {k: v for k, v in generate().public().jwk().items() if k != "alg"}
    nodes = [
        {
            "id": i,
            "name": i,
            "jurisdictions": list(j),
            "base_url": f"http://{i}.test",
            "alg": "EdDSA",
            "public_key": jwk,
        }
        for i, j in (("a", ("340000",)), ("b", ("320000", "330000")), ("c", ("310000",)))
    ]
    path.write_text(dump("t", nodes, trust_root=trust_root), encoding="utf-8")
    return path


def test_only_the_trust_root_serves_the_trust_list(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from tongban.contexts import build_node
    from tongban.web.app import create_app

    path = _federation_file(tmp_path / "federation.toml", "b")

    def client(node: str, served: str) -> TestClient:
        s = Settings(
            secret_key="x",
            node_id=node,
            served_jurisdictions=served,
            federation_file=path,
            embedded_worker=False,
        )
        return TestClient(create_app(build_node(s, factory)), follow_redirects=False)

    for route in ("/api/v1/trust-list", "/api/v1/trust-list/root"):
        r = client("a", "340000").get(route)
        assert r.status_code == 307 and r.headers["location"] == f"http://b.test{route}"
    root = client("b", "320000,330000")
    r = root.get("/api/v1/trust-list")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/jwt")
    assert root.get("/api/v1/trust-list/root").json()["keys"]


def test_trust_root_must_name_a_node(tmp_path: Path) -> None:
    from tongban.exchange.federation import FederationError, load

    assert load(_federation_file(tmp_path / "ok.toml", "c")).trust_root == "c"
    assert load(_federation_file(tmp_path / "none.toml", None)).trust_root is None
    with pytest.raises(FederationError, match="trust_root"):
        load(_federation_file(tmp_path / "bad.toml", "zz"))
