"""Cards and holders on a real database (SQLite and PostgreSQL): issuing with a kernel
number, 挂失 / 解除挂失 / 补换 / 注销 through the state machine with history in the
audit chain, who may see and act (the holder, a clerk of the card's jurisdiction), the
version guard, and the demo cards."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tongban.audit import service as audit
from tongban.card import domain, service
from tongban.card.models import Card
from tongban.errors import ConcurrentChange, NotFound, PermissionDenied, ValidationFailed
from tongban.kernel import numbering
from tongban.kernel.lifecycle import IllegalTransition

from builders import make_clerk, make_resident


def _card(session: Session, city: str = "320100", **kw: object) -> tuple[Card, object]:
    holder = make_resident(session, city, **kw)  # type: ignore[arg-type]
    return service.issue(session, service.holder_of(holder)), holder


def test_a_card_is_numbered_in_its_city_and_starts_with_an_issue_event(session: Session) -> None:
    before = numbering.peek(session, "card:320100")
    card, holder = _card(session)
    assert card.number == domain.card_number("320100", before + 1)
    assert card.jurisdiction_code == "320000" and card.state == "normal"
    assert card.generation == 3 and card.transport is True
    assert card.birth_date is not None and card.birth_date.year == 1990
    assert [(e.seq, e.action, e.from_state, e.to_state) for e in card.events] == [
        (1, "issue", None, "normal")
    ]
    second, _ = _card(session)
    assert second.number == domain.card_number("320100", before + 2)


def test_the_holder_reports_lost_finds_and_replaces(session: Session) -> None:
    card, holder = _card(session)
    service.act(session, holder, card.id, "report_lost", "钱包被盗")  # type: ignore[arg-type]
    assert card.state == "lost"
    service.act(session, holder, card.id, "found")  # type: ignore[arg-type]
    assert card.state == "normal"
    out = service.act(session, holder, card.id, "replace", "卡片损坏")  # type: ignore[arg-type]
    assert card.state == "replaced" and out.replacement is not None
    new = out.replacement
    assert new.state == "normal" and new.replaces_id == card.id and new.number != card.number
    assert new.holder_id_number == card.holder_id_number
    assert [(e.seq, e.action, e.to_state) for e in card.events] == [
        (1, "issue", "normal"),
        (2, "report_lost", "lost"),
        (3, "found", "normal"),
        (4, "replace", "replaced"),
    ]
    assert card.events[-1].payload == {"replacement": new.number}
    assert card.events[1].comment == "钱包被盗" and card.events[1].actor_role == "resident"
    assert new.events[0].payload["replaces"] == card.number
    # The holder's page shows the new card as the current one.
    assert service.current_card(session, holder) == new  # type: ignore[arg-type]
    assert service.list_mine(session, holder)[0] == new  # type: ignore[arg-type]


def test_every_card_event_is_in_the_audit_chain_without_the_reason(session: Session) -> None:
    card, holder = _card(session)
    service.act(session, holder, card.id, "report_lost", "钱包被盗")  # type: ignore[arg-type]
    session.commit()
    about = audit.about(session, f"card:{card.id}")
    assert [e.kind for e in about] == ["card.event", "card.event"]
    body = json.loads(about[-1].body)
    assert body["action"] == "report_lost" and body["to_state"] == "lost"
    assert len(body["comment_digest"]) == 64 and "钱包被盗" not in about[-1].body


def test_a_clerk_of_the_jurisdiction_acts_for_a_walk_in(session: Session) -> None:
    card, _holder = _card(session, "320100")
    clerk = make_clerk(session, "320500")  # 苏州: same jurisdiction (江苏)
    assert [c.id for c in service.find_for_clerk(session, clerk, card.holder_id_number)] == [
        card.id
    ]
    service.act(session, clerk, card.id, "report_lost", "本人到窗口申请")
    assert card.events[-1].actor_role == "clerk"
    with pytest.raises(ValidationFailed) as missing:
        service.act(session, clerk, card.id, "cancel", "")
    assert missing.value.errors[0].field == "reason"
    service.act(session, clerk, card.id, "cancel", "户籍迁出长三角")
    assert card.state == "cancelled"


def test_a_clerk_of_another_jurisdiction_sees_nothing(session: Session) -> None:
    card, _ = _card(session, "320100")
    clerk = make_clerk(session, "310000")
    assert service.find_for_clerk(session, clerk, card.holder_id_number) == []
    with pytest.raises(NotFound):
        service.act(session, clerk, card.id, "report_lost")


def test_a_clerk_search_needs_a_valid_id_number_and_a_clerk(session: Session) -> None:
    clerk = make_clerk(session, "320100")
    with pytest.raises(ValidationFailed) as bad:
        service.find_for_clerk(session, clerk, "320102199001011234")
    assert bad.value.errors[0].field == "id_number"
    resident = make_resident(session, "320100")
    with pytest.raises(PermissionDenied):
        service.find_for_clerk(session, resident, resident.id_number or "")


def test_another_resident_or_an_unproven_holder_cannot_see_the_card(session: Session) -> None:
    card, holder = _card(session)
    other = make_resident(session, "320100")
    with pytest.raises(NotFound):
        service.get_for(session, other, card.id)
    with pytest.raises(NotFound):
        service.act(session, other, card.id, "report_lost")
    # Someone who registered with the holder's ID number without proving it sees nothing.
    impostor = make_resident(
        session,
        "320100",
        assurance_level="self_declared",
        id_number=holder.id_number,  # type: ignore[attr-defined]
    )
    with pytest.raises(PermissionDenied):
        service.list_mine(session, impostor)
    with pytest.raises(NotFound):
        service.get_for(session, impostor, card.id)
    with pytest.raises(NotFound):
        service.get_for(session, other, uuid.uuid4())


def test_the_holder_cannot_cancel_and_a_final_card_refuses_everything(session: Session) -> None:
    card, holder = _card(session)
    with pytest.raises(IllegalTransition) as refused:
        service.act(session, holder, card.id, "cancel", "不用了")  # type: ignore[arg-type]
    assert refused.value.why == "actor"
    service.act(session, holder, card.id, "replace")  # type: ignore[arg-type]
    with pytest.raises(IllegalTransition):
        service.act(session, holder, card.id, "report_lost")  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed):
        service.act(session, holder, card.id, "issue")  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed):
        service.act(session, holder, card.id, "explode")  # type: ignore[arg-type]


def test_a_change_on_a_card_that_moved_meanwhile_is_a_409(session: Session) -> None:
    card, holder = _card(session)
    # Another request reports it lost meanwhile: the row and its version move under us.
    session.execute(
        update(Card)
        .where(Card.id == card.id)
        .values(state="lost", version=Card.version + 1)
        .execution_options(synchronize_session=False)
    )
    with pytest.raises(ConcurrentChange) as e:
        service.act(session, holder, card.id, "replace")  # type: ignore[arg-type]
    assert e.value.status == 409 and e.value.type == "concurrent-change"
    session.rollback()


def test_demo_cards_for_proven_residents_once(session: Session) -> None:
    resident = make_resident(session, "330100")
    unproven = make_resident(session, "330100", assurance_level="self_declared")
    made = service.load_demo_cards(session)
    assert made >= 1
    assert len(service.list_mine(session, resident)) == 1
    assert session.scalar(select(Card).where(Card.holder_id_number == unproven.id_number)) is None
    assert service.load_demo_cards(session) == 0
