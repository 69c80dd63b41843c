"""What licences do when cases announce a decision (tongban.kernel.events): cases no
longer call licences to decide."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tongban.kernel import events
from tongban.licences import domain
from tongban.licences.issuing import issue_for_case
from tongban.licences.models import Licence
from tongban.licences.usage import reverify_for_decision


@events.subscribe(events.CaseApproving)
def reverify_licences(session: Session, event: events.CaseApproving) -> None:
    """免提交: a licence the applicant presented instead of a material must still verify
    when the officer approves; one that no longer does refuses the approval (409)."""
    reverify_for_decision(session, event.case_id)


@events.subscribe(events.CaseDelivered)
def issue_licence(session: Session, event: events.CaseDelivered) -> None:
    """A matter that produces an e-licence: issue it when the approved case is delivered."""
    issue_for_case(session, event)


@events.subscribe(events.RecordConcerns)
def licence_concerns(session: Session, q: events.RecordConcerns) -> events.Concerned | None:
    """Whom a step of a licence concerns (notifications ask): its holder's account, or
    the accounts of its holder's ID number / credit code on this node."""
    if q.kind != Licence.__tablename__:
        return None
    lic = session.get(Licence, q.record_id)
    if lic is None:
        return None
    ltype = domain.licence_types().get(lic.type_code)
    name = ltype.name if ltype is not None else lic.type_code
    return events.Concerned(
        accounts=(lic.holder_account_id,) if lic.holder_account_id else (),
        identifiers=() if lic.holder_account_id else (lic.holder_identifier,),
        authority_id=lic.authority_id,
        label=f"您的{name}（{lic.authority_name}）",
        link=f"/my/licences/{lic.id}",
        staff_link=f"/officer/licences/{lic.id}",
    )
