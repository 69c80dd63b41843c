"""Who sees which case and who may act on it: the reading side of the cases context.
Every page, API, CLI command and job asks here (re-exported by cases.service)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tongban.cases import domain
from tongban.cases.domain import Action, Actor, CaseState
from tongban.cases.models import Case
from tongban.catalog.service import personal_fields
from tongban.errors import NotFound, PermissionDenied
from tongban.identity.domain import Duty, Role, mask_id_number
from tongban.identity.models import Account


def visible_clause(actor: Account) -> Any:
    role = Role(actor.role)
    if role in (Role.RESIDENT, Role.ENTERPRISE):
        return Case.applicant_id == actor.id
    if role is Role.OFFICER:
        return (Case.authority_id == actor.authority_id) & (Case.handoff == "delivered")
    if role is Role.CLERK:
        return (Case.channel == "window") & (Case.receiving_city == actor.city_code)
    if role is Role.SUPERVISOR:
        return Case.competent_jurisdiction == actor.jurisdiction_code
    return None


def can_see(actor: Account, case: Case) -> bool:
    """Whether `actor` may see `case` (the same rule as list_cases' query)."""
    role = Role(actor.role)
    if role in (Role.RESIDENT, Role.ENTERPRISE):
        return case.applicant_id == actor.id
    if role is Role.OFFICER:
        return case.authority_id == actor.authority_id and case.handoff == "delivered"
    if role is Role.CLERK:
        return case.channel == "window" and case.receiving_city == actor.city_code
    if role is Role.SUPERVISOR:
        return case.competent_jurisdiction == actor.jurisdiction_code
    return False


def get_case(session: Session, actor: Account, case_ref: uuid.UUID | str) -> Case:
    """A case by id or number, if `actor` may see it (an unseen case is 'not found')."""
    if isinstance(case_ref, uuid.UUID):
        case = session.get(Case, case_ref)
    else:
        case = session.scalar(select(Case).where(Case.number == case_ref))
    if case is None or not can_see(actor, case):
        raise NotFound("办件不存在或无权查看", type="unknown-case")
    return case


def list_cases(
    session: Session,
    actor: Account,
    *,
    state: str | None = None,
    deadline_flag: str | None = None,
    q: str | None = None,
    limit: int = 200,
) -> list[Case]:
    """The cases `actor` may see, newest first; officers see the most urgent first."""
    clause = visible_clause(actor)
    if clause is None:
        raise PermissionDenied("当前账户无权查看办件")
    stmt = select(Case).where(clause)
    if state:
        stmt = stmt.where(Case.state == state)
    if deadline_flag:
        stmt = stmt.where(Case.deadline_flag == deadline_flag)
    if q:
        stmt = stmt.where(
            or_(
                Case.number.contains(q),
                Case.matter_name.contains(q),
                Case.applicant_name.contains(q),
            )
        )
    if actor.role == Role.OFFICER:
        stmt = stmt.order_by(Case.deadline.is_(None), Case.deadline, Case.submitted_at)
    else:
        stmt = stmt.order_by(Case.submitted_at.desc())
    return list(session.scalars(stmt.limit(limit)))


def actor_kind(actor: Account, case: Case) -> Actor | None:
    """How the state machine sees `actor` on `case` (None: not a party to it)."""
    if actor.role in (Role.RESIDENT, Role.ENTERPRISE) and case.applicant_id == actor.id:
        return Actor.APPLICANT
    if actor.role == Role.OFFICER and actor.authority_id == case.authority_id:
        return Actor.APPROVER if actor.duty == Duty.APPROVER else Actor.REVIEWER
    return None


def sees_full_identifiers(actor: Account, case: Case) -> bool:
    """Whether `actor` sees the case's personal identifiers in full (the applicant's ID
    number and every form field declared `x-personal-id`): the applicant and the officers
    who handle it; a window clerk, a supervisor or anyone else sees them masked."""
    return actor_kind(actor, case) is not None


def visible_form_data(
    actor: Account, case: Case, schema: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The case's form as `actor` may see it: fields of `schema` declared as personal
    identifiers masked unless `actor` sees full identifiers."""
    data = dict(case.form_data or {})
    if sees_full_identifiers(actor, case):
        return data
    for name in personal_fields(schema):
        if isinstance(data.get(name), str):
            data[name] = mask_id_number(data[name])
    return data


def available_actions(actor: Account, case: Case) -> list[Action]:
    """The steps `actor` may take on `case` now."""
    kind = actor_kind(actor, case)
    if kind is None or (kind is not Actor.APPLICANT and case.handoff != "delivered"):
        return []
    return domain.allowed_actions(CaseState(case.state), kind)
