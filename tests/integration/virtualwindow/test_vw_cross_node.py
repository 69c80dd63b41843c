"""A virtual-window session across two nodes in one process, over signed HTTP (SQLite and
PostgreSQL; the fixtures of tests/integration/exchange: node A serves 上海 and 安徽, node B
江苏 and 浙江). A 苏州 clerk (B) serves a resident for a 合肥 matter: the session lives on
A, in the queue of the 合肥 authority; every step of the clerk is relayed by B with the
session's secret. Then what must be refused: another clerk, another node, a wrong
secret, a locked field, a submission before the identity check is confirmed."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from integration.virtualwindow.sessions import hefei_officer, queued_from_b, taken_on_a
from tongban.audit.domain import field_digest
from tongban.audit.models import AuditEntry
from tongban.cases.models import Case
from tongban.errors import Conflict, DomainError, NotFound, ValidationFailed
from tongban.exchange import query
from tongban.exchange.models import ExchangeQuery
from tongban.identity.models import Account
from tongban.licences import service as licences
from tongban.virtualwindow import recording, relay, service
from tongban.virtualwindow.models import WindowSession, WindowTicket
from tongban.virtualwindow.schemas import ActAsk, ViewAsk

from builders import (
    SIMPLE_MATTER,
    TINY_PDF,
    id_number,
    make_clerk,
    make_licence,
    make_resident,
)


def test_a_suzhou_clerk_serves_a_hefei_matter_through_the_competent_node(
    pair: Any,
    tools: Any,
) -> None:
    a, b = pair
    sid, clerk_id = queued_from_b(b)
    with a.session() as s:
        officer = hefei_officer(s)
        s.commit()
        officer_id = officer.id
        ws = s.get(WindowSession, sid)
        assert ws is not None and ws.state == "queued" and ws.origin_node == "node-b"
        assert [w.id for w in service.queue(s, officer)][-1] == sid
        # The secret itself never left B: A keeps its digest.
        assert s.get(WindowTicket, sid) is None
    with b.session() as s:
        clerk = s.get(Account, clerk_id)
        view = relay.relay(s, clerk, s.get(WindowTicket, sid), "sync")
        assert view["state"] == "queued" and view["position"] >= 1
        s.commit()
    with a.session() as s:
        officer = s.get(Account, officer_id)
        service.take(s, officer, sid)
        service.officer_act(s, officer, sid, "chat", {"text": "您好，请出示身份证"})
        s.commit()
    with b.session() as s:
        clerk = s.get(Account, clerk_id)
        t = s.get(WindowTicket, sid)
        view = relay.relay(s, clerk, t, "form", {"values": {"proof_purpose": "异地贷款"}})
        assert view["state"] == "in_progress" and view["form"]["proof_purpose"] == "异地贷款"
        assert [e["payload"]["text"] for e in view["events"] if e["action"] == "chat"] == [
            "您好，请出示身份证"
        ]
        view = relay.upload(s, clerk, t, "id_card", "身份证.pdf", TINY_PDF + b"vw")
        assert [d["material_code"] for d in view["documents"]] == ["id_card"]
        s.commit()
        with pytest.raises(ValidationFailed) as refused:
            relay.submit(s, clerk, t)
        s.rollback()
    assert refused.value.type == "identity-not-confirmed"
    with a.session() as s:
        officer = s.get(Account, officer_id)
        ws = s.get(WindowSession, sid)
        assert ws is not None and ws.form == {"proof_purpose": "异地贷款"}
        service.officer_act(s, officer, sid, "lock", {"field": "proof_purpose"})
        s.commit()
    with b.session() as s:
        clerk = s.get(Account, clerk_id)
        t = s.get(WindowTicket, sid)
        with pytest.raises(query.QueryRefused) as locked:
            relay.relay(s, clerk, t, "form", {"values": {"proof_purpose": "其他"}})
        assert locked.value.status == 422 and "field-locked" in locked.value.type
        s.rollback()
        args = {
            "method": "id_card_reader",
            "applicant_name": "王芳",
            "applicant_identifier": id_number("340100"),
        }
        view = relay.relay(s, clerk, t, "record_identity", args)
        assert view["identity"]["applicant_identifier"].count("*") >= 8
        assert "identifier_full" not in service.for_browser(view)["identity"]
        s.commit()
    with a.session() as s:
        officer = s.get(Account, officer_id)
        service.officer_act(s, officer, sid, "confirm_identity", {})
        s.commit()
    with b.session() as s:
        clerk = s.get(Account, clerk_id)
        view = relay.submit(s, clerk, s.get(WindowTicket, sid))
        s.commit()
    assert view["state"] == "submitted" and view["case_number"]
    number = view["case_number"]
    with b.session() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert (
            case is not None
            and case.mode == "virtual"
            and case.form_data == {"proof_purpose": "异地贷款"}
        )
    tools.drain(a, b)
    with a.session() as s:
        officer = s.get(Account, officer_id)
        assert service.accept_case(s, officer, sid) == number
        s.commit()
        case = s.scalar(select(Case).where(Case.number == number))
        assert case is not None and case.state == "accepted"
        ws = s.get(WindowSession, sid)
        assert ws is not None and ws.case_id == str(case.id)
        actions = [e.action for e in ws.events]
        assert actions[:2] == ["start", "take"]
        for needed in ("form", "lock", "chat", "document", "record_identity", "submit"):
            assert needed in actions
        # Sealed: every event of the session is an entry of A's audit chain.
        sealed = s.scalars(
            select(AuditEntry).where(
                AuditEntry.kind == "virtualwindow.event", AuditEntry.subject == f"vw_session:{sid}"
            )
        ).all()
        assert len(sealed) == len(ws.events)


def test_another_clerk_another_node_or_a_wrong_secret_is_refused(pair: Any) -> None:
    a, b = pair
    with b.session() as s:
        clerk, other = make_clerk(s, "320500"), make_clerk(s, "320500")
        ticket = relay.start(s, clerk, SIMPLE_MATTER, "340100")
        s.commit()
        sid, secret = ticket.session_id, ticket.secret
        # Another clerk of the same node does not even see the ticket.
        with pytest.raises(NotFound):
            relay.ticket_of(s, other, sid)

        def ask(**over: Any) -> Any:
            payload = {
                "session_id": sid,
                "secret": secret,
                "clerk_ref": str(clerk.id),
                "op": "chat",
                "args": {"text": "x"},
                **over,
            }
            return query.ask(
                s, service.ACT, source="320000", target="340000", payload=ActAsk(**payload)
            )

        for wrong in ({"secret": "0" * 64}, {"clerk_ref": str(other.id)}):
            with pytest.raises(query.QueryRefused) as e:
                ask(**wrong)
            assert e.value.status == 403
            s.rollback()
    # A session started on A itself (a 上海 clerk): B cannot act on it, secret or not.
    with a.session() as s:
        sh = make_clerk(s, "310000")
        local = relay.start(s, sh, SIMPLE_MATTER, "340100")
        s.commit()
        lsid, lsecret, sh_id = local.session_id, local.secret, str(sh.id)
    with b.session() as s:
        with pytest.raises(query.QueryRefused) as e:
            query.ask(
                s,
                service.ACT,
                source="320000",
                target="340000",
                payload=ActAsk(
                    session_id=lsid, secret=lsecret, clerk_ref=sh_id, op="sync", args={}
                ),
            )
        assert e.value.status == 403
        # An unknown session is refused the same way, without saying more.
        with pytest.raises(query.QueryRefused):
            query.ask(
                s,
                service.ACT,
                source="320000",
                target="340000",
                payload=ActAsk(
                    session_id=uuid.uuid4(), secret=lsecret, clerk_ref=sh_id, op="sync", args={}
                ),
            )


def _queries(node: Any, type_: str) -> list[Any]:
    with node.session() as s:
        return list(
            s.scalars(
                select(ExchangeQuery).where(ExchangeQuery.type == type_).order_by(ExchangeQuery.at)
            )
        )


def test_the_clerks_polls_are_not_recorded_but_every_step_and_every_refused_read_is(
    pair: Any,
) -> None:
    """A page polls every 300–400 ms: its reads (virtualwindow.view) leave no query row,
    hence no audit entry, on either node; each step that changes the session (act) is
    recorded on both, and a read refused for a wrong secret is recorded too."""
    a, b = pair
    sid, clerk_id, _ = taken_on_a(a, b)
    audited = {}
    for node in (a, b):
        with node.session() as s:
            audited[node.id] = s.scalar(select(func.count()).select_from(AuditEntry))
    with b.session() as s:
        clerk = s.get(Account, clerk_id)
        for _ in range(10):
            view = relay.relay(s, clerk, s.get(WindowTicket, sid), "sync")
            assert view["state"] == "in_progress" and view["officer_name"]
            s.commit()
    for node in (a, b):
        assert _queries(node, service.VIEW) == [], "an answered read was recorded"
        with node.session() as s:
            # Ten polls wrote nothing to either node's audit chain.
            assert s.scalar(select(func.count()).select_from(AuditEntry)) == audited[node.id]
    acts = {node.id: len(_queries(node, service.ACT)) for node in (a, b)}
    views = {node.id: len(_queries(node, service.VIEW)) for node in (a, b)}
    with b.session() as s:
        clerk = s.get(Account, clerk_id)
        relay.relay(s, clerk, s.get(WindowTicket, sid), "chat", {"text": "您好"})
        s.commit()
    assert [q.role for q in _queries(a, service.ACT)[acts[a.id] :]] == ["answered"]
    assert [q.role for q in _queries(b, service.ACT)[acts[b.id] :]] == ["asked"]
    with b.session() as s:
        with pytest.raises(query.QueryRefused) as e:
            query.ask(
                s,
                service.VIEW,
                source="320000",
                target="340000",
                payload=ViewAsk(session_id=sid, secret="0" * 64, clerk_ref=str(clerk_id)),
            )
        assert e.value.status == 403
        s.commit()
    refused = _queries(a, service.VIEW)[views[a.id] :]
    assert [(q.role, q.outcome) for q in refused] == [("answered", "refused")]
    asked = _queries(b, service.VIEW)[views[b.id] :]
    assert [(q.role, q.outcome) for q in asked] == [("asked", "refused")]


def test_each_side_joining_and_leaving_is_an_event_of_the_session(pair: Any) -> None:
    """Opening the room records 'join'; leaving it (the page's beacon) records 'leave',
    for the clerk relayed by B and for the officer on A, sealed like every event; a
    leave on a queued session records nothing."""
    a, b = pair
    with b.session() as s:
        clerk = make_clerk(s, "320500")
        ticket = relay.start(s, clerk, SIMPLE_MATTER, "340100")
        relay.relay(s, clerk, ticket, "leave")  # still queued: nothing to record
        s.commit()
        sid, clerk_id = ticket.session_id, clerk.id
    with a.session() as s:
        officer = hefei_officer(s)
        service.take(s, officer, sid)
        service.officer_act(s, officer, sid, "join", {})
        service.officer_act(s, officer, sid, "leave", {})
        s.commit()
    with b.session() as s:
        clerk = s.get(Account, clerk_id)
        view = relay.relay(s, clerk, s.get(WindowTicket, sid), "join")
        view = relay.relay(s, clerk, s.get(WindowTicket, sid), "leave")
        s.commit()
    steps = [(e["action"], e["side"]) for e in view["events"]]
    assert steps == [
        ("start", "clerk"),
        ("take", "officer"),
        ("join", "officer"),
        ("leave", "officer"),
        ("join", "clerk"),
        ("leave", "clerk"),
    ]
    assert view["events"][-1]["label"] == "离开会话"
    with a.session() as s:
        ws = s.get(WindowSession, sid)
        assert ws is not None and ws.state == "in_progress"
        sealed = s.scalars(
            select(AuditEntry).where(
                AuditEntry.kind == "virtualwindow.event", AuditEntry.subject == f"vw_session:{sid}"
            )
        ).all()
        assert len(sealed) == len(ws.events) == 6


def test_recorded_chunks_are_kept_on_the_clerks_node_and_their_hashes_sealed_on_the_competent_one(
    pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording (off by default): each chunk the clerk's browser uploads is kept on B,
    named by its SHA-256, and the hash is an event of the session on A whose audit entry
    pins it; a chunk too big, for another clerk's session, repeated, or after the end is
    refused and nothing is kept; the retention job deletes old chunks, the hashes stay."""
    a, b = pair
    with b.session() as s:
        clerk, other = make_clerk(s, "320500"), make_clerk(s, "320500")
        ticket = relay.start(s, clerk, SIMPLE_MATTER, "340100")
        s.commit()
        sid, clerk_id, other_id = ticket.session_id, clerk.id, other.id
        with pytest.raises(Conflict) as off:
            recording.upload_chunk(s, clerk, ticket, b"webm" * 100)
        assert off.value.type == "recording-off"
    monkeypatch.setattr(b.settings, "vw_recording", True)
    monkeypatch.setattr(b.settings, "vw_recording_max_chunk_bytes", 4096)
    with a.session() as s:
        service.take(s, hefei_officer(s), sid)
        s.commit()
    chunks = [bytes([i]) * (1000 + i) for i in range(3)]
    with b.session() as s:
        clerk = s.get(Account, clerk_id)
        for chunk in chunks:
            recording.upload_chunk(s, clerk, s.get(WindowTicket, sid), chunk)
            s.commit()
    hashes = [hashlib.sha256(c).hexdigest() for c in chunks]
    for chunk, sha in zip(chunks, hashes, strict=True):
        kept = recording.chunk_path(b.settings, sid, sha)
        assert kept.read_bytes() == chunk
    with a.session() as s:
        ws = s.get(WindowSession, sid)
        assert ws is not None
        recorded = [e for e in ws.events if e.action == "recording"]
        assert [e.payload for e in recorded] == [
            {"seq": i, "size": len(c), "sha256": h}
            for i, (c, h) in enumerate(zip(chunks, hashes, strict=True))
        ]
        # Each hash is pinned by the event's entry in A's audit chain.
        entries = s.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.kind == "virtualwindow.event", AuditEntry.subject == f"vw_session:{sid}"
            )
            .order_by(AuditEntry.seq)
        ).all()
        pinned = {json.loads(x.body).get("payload_digest") for x in entries}
        for e, x in zip(recorded, entries[-3:], strict=True):
            assert field_digest(x.alg, e.payload) in pinned
    events_before = len(recorded)

    def refused(who: Any, data: bytes) -> DomainError:
        with b.session() as s, pytest.raises(DomainError) as e:
            recording.upload_chunk(s, s.get(type(who), who.id), s.get(WindowTicket, sid), data)
        return e.value

    too_big = refused(clerk, b"x" * 4097)
    assert too_big.status == 413
    assert refused(clerk, b"").status == 422
    # Another clerk of B presenting this session's ticket: refused by A (not its clerk).
    with b.session() as s:
        other = s.get(Account, other_id)
    assert refused(other, b"y" * 100).status == 403
    assert refused(clerk, chunks[0]).type == "chunk-recorded"
    with b.session() as s:
        clerk = s.get(Account, clerk_id)
        relay.relay(s, clerk, s.get(WindowTicket, sid), "end", {"reason": "办结"})
        s.commit()
    late = b"z" * 100
    assert refused(clerk, late).status == 409
    assert not recording.chunk_path(b.settings, sid, hashlib.sha256(late).hexdigest()).exists()
    with a.session() as s:
        ws = s.get(WindowSession, sid)
        assert ws is not None
        assert len([e for e in ws.events if e.action == "recording"]) == events_before
    # Retention: the oldest chunk is past it and goes; its hash stays on A.
    old = recording.chunk_path(b.settings, sid, hashes[0])
    past = time.time() - (b.settings.vw_recording_retention_days + 1) * 86400
    os.utime(old, (past, past))
    assert recording.purge(b.factory, b.settings) == 1
    assert not old.exists() and recording.chunk_path(b.settings, sid, hashes[1]).exists()


def test_a_licence_presented_at_the_counter_is_verified_on_the_competent_node_and_recorded(
    pair: Any,
) -> None:
    """免提交: the clerk relays the presentation; A verifies it with the licences
    context's service (its trust and status lists) and records the result, which both
    sides' views show; a forged one is recorded as not valid, with the reason."""
    a, b = pair
    with a.session() as s:
        lic = make_licence(s, make_resident(s, "340100"))
        s.commit()
        compact, full = lic.compact, lic.holder_identifier
        expected = licences.verify_presentation(s, compact)
    sid, clerk_id, _ = taken_on_a(a, b)
    forged = compact[:40] + ("A" if compact[40] != "A" else "B") + compact[41:]
    with b.session() as s:
        clerk = s.get(Account, clerk_id)
        with pytest.raises(query.QueryRefused) as empty:
            relay.relay(s, clerk, s.get(WindowTicket, sid), "licence", {"presentation": " "})
        assert empty.value.status == 422
        s.rollback()
        relay.relay(s, clerk, s.get(WindowTicket, sid), "licence", {"presentation": compact})
        view = relay.relay(s, clerk, s.get(WindowTicket, sid), "licence", {"presentation": forged})
        s.commit()
    first, second = view["licences"]
    assert expected.valid and first["valid"] is True and first["reason"] is None
    assert first["licence_id"] == expected.licence_id and first["type_name"]
    assert first["type_code"] == expected.type_code
    assert first["presentation_sha256"] == hashlib.sha256(compact.encode()).hexdigest()
    assert second["valid"] is False and second["reason"] and second["reason_text"]
    # The resident's ID number among the disclosed claims is masked in what pages get.
    shown = json.dumps(view, ensure_ascii=False)
    assert first["claims"]["id_number"] != full and full not in shown
    with a.session() as s:
        ws = s.get(WindowSession, sid)
        assert ws is not None
        officer_view = service.view(s, ws, service.Side.OFFICER)
        assert [x["valid"] for x in officer_view["licences"]] == [expected.valid, False]
        recorded = [e for e in ws.events if e.action == "licence"]
        assert [e.actor_role for e in recorded] == ["clerk", "clerk"]
