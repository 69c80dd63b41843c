"""kernel.events: subscribers are called at once, in order, for the event's type and its
bases; an exception refuses the change; gather collects answers by subscriber name."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tongban.errors import Conflict
from tongban.kernel import events


@dataclass(frozen=True)
class Base(events.Event):
    n: int


@dataclass(frozen=True)
class Derived(Base):
    pass


@dataclass(frozen=True)
class Question(events.Event):
    text: str


SESSION: Any = object()  # subscribers here do not touch it


def test_subscribers_of_the_type_and_its_bases_run_in_order_once() -> None:
    seen: list[str] = []

    @events.subscribe(Derived)
    def on_derived(session: Any, ev: Derived) -> None:
        seen.append(f"derived {ev.n}")

    @events.subscribe(Base)
    def on_base(session: Any, ev: Base) -> None:
        assert session is SESSION
        seen.append(f"base {ev.n}")

    events.subscribe(Base)(on_base)  # registering twice changes nothing
    events.publish(SESSION, Derived(1))
    events.publish(SESSION, Base(2))
    assert seen == ["derived 1", "base 1", "base 2"]


def test_a_subscriber_that_raises_refuses_and_stops_the_others() -> None:
    @dataclass(frozen=True)
    class Approving(events.Event):
        case_id: uuid.UUID

    later: list[uuid.UUID] = []

    @events.subscribe(Approving)
    def refuse(session: Any, ev: Approving) -> None:
        raise Conflict("不能准予", type="licence-no-longer-valid")

    @events.subscribe(Approving)
    def after(session: Any, ev: Approving) -> None:
        later.append(ev.case_id)

    with pytest.raises(Conflict):
        events.publish(SESSION, Approving(uuid.uuid4()))
    assert later == []


def test_an_event_nobody_subscribed_to_is_a_no_op() -> None:
    @dataclass(frozen=True)
    class Unheard(events.Event):
        pass

    events.publish(SESSION, Unheard())
    assert events.gather(SESSION, Unheard()) == {}


def test_gather_returns_answers_by_subscriber_name() -> None:
    @events.subscribe(Question)
    def shout(session: Any, q: Question) -> str:
        return q.text.upper()

    @events.subscribe(Question)
    def length(session: Any, q: Question) -> int:
        return len(q.text)

    assert events.gather(SESSION, Question("办件")) == {"shout": "办件".upper(), "length": 2}


def test_cases_decisions_reach_licences_and_evidence_through_events() -> None:
    """The subscribers the registry loads: licences re-verify before an approval and
    issue on delivery, evidence records consent and answers the case pages."""
    from tongban.contexts import registry

    registry()
    names = {
        t.__name__: {fn.__name__ for fn in events.subscribers(t)}
        for t in (
            events.CaseApproving,
            events.CaseDelivered,
            events.CaseSubmitted,
            events.ApplicationFormShown,
            events.CasePageShown,
            events.Changed,
        )
    }
    assert names == {
        "CaseApproving": {"reverify_licences"},
        "CaseDelivered": {"issue_licence"},
        "CaseSubmitted": {"record_submitted_consent"},
        "ApplicationFormShown": {"evidence_kinds"},
        "CasePageShown": {"evidence_panel"},
        "Changed": {"_record_changed"},
    }
