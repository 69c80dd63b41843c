"""What licences do when cases announce a decision (tongban.kernel.events): cases no
longer call licences to decide."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tongban.kernel import events
from tongban.licences.issuing import issue_for_case
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
