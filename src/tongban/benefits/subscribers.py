"""What starts an evaluation (kernel.events): a birth certified, a move into a city
delivered (seen as the case's delivery step, on the node that delivered it or on the
applicant's node following it), a disability certificate issued. Each records what the event tells about the
people it concerns (with its source) and evaluates the rules that trigger concerns for
them, in the publisher's transaction; a re-delivered event finds its offers made."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.benefits import service
from tongban.benefits.domain import TriggerKind
from tongban.cases import service as cases
from tongban.exchange import service as exchange
from tongban.identity.models import Account
from tongban.kernel import events
from tongban.regions import service as regions

#: 出生医学证明首次签发: the first step of the 新生儿出生 bundle, whose form names both parents.
BIRTH_MATTERS = frozenset({"YRD-WJ-0004"})
#: 户口迁移（迁入地“一站式”办理）: delivered by the destination's police.
MOVE_MATTERS = frozenset({"YRD-GA-0001"})
#: The licence type of the disability certificate (第二代残疾人证).
DISABILITY_CERTIFICATE = "disability_certificate"

_LEVELS = {"一级": 1, "二级": 2, "三级": 3, "四级": 4}


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value.strip() if isinstance(value, str) else ""


def _ours(session: Session, identifier: str) -> bool:
    """Whether this node evaluates for the person: it holds their data, or it serves the
    jurisdiction of their account. The node that delivered a case for someone living
    elsewhere (the 上海 birth of a 南京 mother) leaves it to the person's node, which
    follows the delivery on its copy of the case."""
    if service.subject(session, identifier) is not None:
        return True
    homes = session.scalars(
        select(Account.jurisdiction_code).where(Account.id_number == identifier)
    )
    return any(j and exchange.serves_here(session, j) for j in homes)


def on_birth(session: Session, event: events.CaseDelivered) -> int:
    """A birth certificate issued: each parent named on the form now has a child born on
    that day; evaluate the birth rules for them. Returns how many parents."""
    form = event.form_data or {}
    born = _str(form, "birth_date")
    if not born:
        return 0
    authority = regions.get_authority(session, event.authority_id)
    source = f"出生医学证明（{authority.name}签发）"
    trigger = service.Trigger(TriggerKind.BIRTH, f"case:{event.case_id}")
    n = 0
    for who in ("mother", "father"):
        ident = _str(form, f"{who}_id_number").upper()
        if len(ident) != 18 or not _ours(session, ident):
            continue
        row = service.subject(session, ident)
        held = (row.facts or {}) if row is not None else {}
        facts: dict[str, Any] = {"latest_birth_date": born}
        if held.get("latest_birth_date", {}).get("value") != born:
            facts["children"] = int(held.get("children", {}).get("value") or 0) + 1
        service.record_facts(session, ident, _str(form, f"{who}_name"), facts, source)
        service.evaluate_person(session, ident, trigger)
        n += 1
    return n


def on_move(session: Session, event: events.CaseDelivered) -> None:
    """户口迁入 delivered: the mover's household is now in the destination's jurisdiction."""
    ident = event.applicant_identifier.upper()
    if event.applicant_type != "resident" or len(ident) != 18 or not _ours(session, ident):
        return
    authority = regions.get_authority(session, event.authority_id)
    service.record_facts(
        session,
        ident,
        event.applicant_name,
        {"household_jurisdiction": authority.jurisdiction_code},
        f"户口迁移（{authority.name}办结）",
    )
    service.evaluate_person(
        session, ident, service.Trigger(TriggerKind.MOVE, f"case:{event.case_id}")
    )


def on_delivered(session: Session, event: events.CaseDelivered) -> None:
    """Births and moves start evaluation when their approved case is delivered."""
    if not event.approved:
        return
    if event.matter_code in BIRTH_MATTERS:
        on_birth(session, event)
    elif event.matter_code in MOVE_MATTERS:
        on_move(session, event)


@events.subscribe(events.CaseStepTaken)
def benefits_on_delivery(session: Session, event: events.CaseStepTaken) -> None:
    """A case delivered here, or this node's copy following its delivery on the competent
    node (CaseDelivered is announced only where the case was delivered; the applicant's
    node learns it as a step): the same evaluation, keyed by the case, so a node that
    sees both does it once."""
    if event.action != "deliver":
        return
    case = cases.case_by_id(session, event.case_id)
    if case.matter_code in BIRTH_MATTERS or case.matter_code in MOVE_MATTERS:
        on_delivered(session, cases.delivered(case))


def on_disability_certificate(
    session: Session, identifier: str, name: str, level: int | str, issuer: str, reference: str
) -> None:
    """A disability certificate (第二代残疾人证) issued: its holder is certified at `level`
    (1–4, or 一级…四级); evaluate the rules this concerns. `reference` (the certificate's
    number) keys the trigger, so a repeated announcement changes nothing.

    Called for every 残疾人证 e-licence issued on this node (`benefits_on_licence`)."""
    lvl = _LEVELS.get(str(level), level)
    if not isinstance(lvl, int) and not str(lvl).isdigit():
        raise ValueError(f"unknown disability level {level!r}")
    service.record_facts(
        session,
        identifier.upper(),
        name,
        {"disability_certified": True, "disability_level": int(lvl)},
        f"残疾人证（{issuer}核发）",
    )
    service.evaluate_person(
        session,
        identifier.upper(),
        service.Trigger(TriggerKind.CERTIFICATE, f"certificate:{reference}"),
    )


@events.subscribe(events.LicenceIssued)
def benefits_on_licence(session: Session, event: events.LicenceIssued) -> None:
    """A 残疾人证 issued here certifies its holder's disability and level: evaluate the
    rules this concerns, on the node that evaluates for the holder (`_ours`)."""
    if event.licence_type != DISABILITY_CERTIFICATE or event.holder_type != "resident":
        return
    ident = event.holder_identifier.upper()
    level = str(event.claims.get("disability_level") or "").strip()
    if level not in _LEVELS and level not in {"1", "2", "3", "4"}:
        return  # no level the rules know: nothing certified to evaluate on
    if not _ours(session, ident):
        return
    on_disability_certificate(
        session, ident, event.holder_name, level, event.issuer_name, event.identifier
    )
