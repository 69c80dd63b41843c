"""What every use case of applications writes: case numbers (kernel numbering) and the
message that hands a case to the competent jurisdiction (with the snapshot that
travels). Events are written by the kernel: ``tongban.kernel.history.record``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tongban.calendar import service as calendar
from tongban.cases import domain, replica
from tongban.cases.access import actor_kind as actor_kind
from tongban.cases.access import available_actions as available_actions
from tongban.cases.access import can_see as can_see
from tongban.cases.access import get_case as get_case
from tongban.cases.access import list_cases as list_cases
from tongban.cases.models import Case
from tongban.db import utcnow
from tongban.exchange import service as exchange
from tongban.kernel import numbering

MSG_FORWARD = "case.forwarded"
MSG_STATUS = "case.status_changed"


# --- numbering -------------------------------------------------------------------


def next_number(session: Session, city_code: str) -> str:
    """The next case number of `city_code` today (the kernel's per-scope daily counter)."""
    day = calendar.local_date(utcnow()).strftime("%Y%m%d")
    return domain.case_number(
        city_code, day, numbering.next_value(session, f"case:{city_code}", day)
    )


def snapshot(case: Case) -> dict[str, Any]:
    """What travels between nodes about a case."""
    return {
        "number": case.number,
        "id": str(case.id),
        "matter_code": case.matter_code,
        "matter_name": case.matter_name,
        "applicant_id": str(case.applicant_id) if case.applicant_id else None,
        "applicant_type": case.applicant_type,
        "applicant_name": case.applicant_name,
        "applicant_identifier": case.applicant_identifier,
        "applicant_phone": case.applicant_phone,
        "channel": case.channel,
        "mode": case.mode,
        "receiving_jurisdiction": case.receiving_jurisdiction,
        "receiving_city": case.receiving_city,
        "clerk_id": str(case.clerk_id) if case.clerk_id else None,
        "identity_verified": case.identity_verified,
        "competent_jurisdiction": case.competent_jurisdiction,
        "competent_city": case.competent_city,
        "authority_id": str(case.authority_id),
        "authority_name": case.authority_name,
        "state": case.state,
        "form_data": case.form_data,
        "consent": case.consent,
        "delivery_method": case.delivery_method,
        "delivery_address": case.delivery_address,
        "time_limit_days": case.time_limit_days,
        "submitted_at": case.submitted_at.isoformat(),
        "parent_number": case.parent.number if case.parent else None,
        "attachments": [
            {
                "material_code": a.material_code,
                "filename": a.filename,
                "sha256": a.sha256,
                "size": a.size,
                "content_type": a.content_type,
            }
            for a in case.attachments
        ],
    }


def forward(session: Session, case: Case) -> None:
    """Queue the hand-over of `case` to its competent jurisdiction, with its snapshot (and its sub-tasks')."""
    payload = {**snapshot(case), **replica.snapshot_extra(session, case)}
    if case.subtasks:  # 多地联办: the lead's node keeps a copy of each sub-task
        payload["subtasks"] = [
            {**snapshot(s), **replica.snapshot_extra(session, s)} for s in case.subtasks
        ]
    exchange.send(
        session, MSG_FORWARD, case.receiving_jurisdiction, case.competent_jurisdiction, payload
    )
