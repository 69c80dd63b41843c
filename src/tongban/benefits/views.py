"""Pages of 免申即享: the resident's offers with their traces (accept with one button),
the officer's review queue, and rule versions with the preview before activation."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from tongban.benefits import domain, service
from tongban.errors import DomainError
from tongban.web.deps import CsrfChecked, CurrentUser, FormDep, SessionDep
from tongban.web.pages import render, render_form_error

router = APIRouter(include_in_schema=False)

DONE = {
    "accepted": "已确认领取，主管部门将按规定发放。",
    "kept": "已决定继续发放。",
    "stopped": "已决定停发。",
    "activated": "新版本已启用，并已按新规则对现有数据重新核验。",
}


def labels() -> dict[str, Any]:
    return {
        "offer_states": {s.value: v for s, v in domain.OFFER_STATE_LABELS.items()},
        "review_states": {s.value: v for s, v in domain.REVIEW_STATE_LABELS.items()},
        "data": {k: d.label for k, d in domain.DATA.items()},
        "modes": {"offer": "推送后本人确认", "grant": "符合即直接发放"},
    }


@router.get("/my/benefits")
def my_benefits(
    request: Request, session: SessionDep, user: CurrentUser, done: str = ""
) -> Response:
    return render(
        request,
        "benefits/my.html",
        user,
        offers=service.my_offers(session, user),
        labels=labels(),
        done=DONE.get(done, ""),
    )


@router.post("/my/benefits/{offer_id}/accept", dependencies=[CsrfChecked])
def accept(offer_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Response:
    offer = service.accept(session, user, offer_id)
    return RedirectResponse(f"/my/benefits?done=accepted#offer-{offer.number}", status_code=303)


@router.get("/officer/benefits")
def review_queue(
    request: Request, session: SessionDep, user: CurrentUser, done: str = "", state: str = "open"
) -> Response:
    state = state if state in ("open", "kept", "stopped") else "open"
    return render(
        request,
        "benefits/reviews.html",
        user,
        reviews=service.reviews(session, user, state),
        state=state,
        counts=service.counts_by_state(session),
        labels=labels(),
        done=DONE.get(done, ""),
        errors={},
        message="",
        failed=None,
    )


@router.post("/officer/benefits/reviews/{review_id}/decide", dependencies=[CsrfChecked])
def decide(
    request: Request,
    review_id: uuid.UUID,
    session: SessionDep,
    user: CurrentUser,
    decision: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        review = service.decide_review(session, user, review_id, decision, reason)
    except DomainError as exc:
        return render_form_error(
            request,
            session,
            "benefits/reviews.html",
            user,
            exc,
            inputs={"reason": "reason", "decision": "decision"},
            reviews=service.reviews(session, user, "open"),
            state="open",
            counts=service.counts_by_state(session),
            labels=labels(),
            done="",
            failed=str(review_id),
        )
    return RedirectResponse(f"/officer/benefits?done={review.state}", status_code=303)


@router.get("/officer/benefits/rules")
def rules(request: Request, session: SessionDep, user: CurrentUser, done: str = "") -> Response:
    rows = service.all_versions(session, user)
    return render(
        request,
        "benefits/rules.html",
        user,
        rows=rows,
        rules={(r.rule_id, r.version): domain.parse_rule(r.definition) for r in rows},
        mine=service.manageable(session, user),
        labels=labels(),
        done=DONE.get(done, ""),
        errors={},
        message="",
        failed=None,
    )


@router.post("/officer/benefits/rules/{rule_id}/draft", dependencies=[CsrfChecked])
def draft(
    request: Request, rule_id: str, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    values = {
        int(k[1:]): str(v)[:200]
        for k, v in form.items()
        if k.startswith("c") and k[1:].isdigit() and int(k[1:]) < 20
    }
    try:
        row = service.draft_version(session, user, rule_id, values)
    except DomainError as exc:
        rows = service.all_versions(session, user)
        return render_form_error(
            request,
            session,
            "benefits/rules.html",
            user,
            exc,
            rows=rows,
            rules={(r.rule_id, r.version): domain.parse_rule(r.definition) for r in rows},
            mine=service.manageable(session, user),
            labels=labels(),
            done="",
            failed=rule_id,
        )
    return RedirectResponse(
        f"/officer/benefits/rules/{row.rule_id}/v/{row.version}", status_code=303
    )


@router.get("/officer/benefits/rules/{rule_id}/v/{version}")
def preview_page(
    request: Request, rule_id: str, version: int, session: SessionDep, user: CurrentUser
) -> Response:
    row = service.rule_row(session, rule_id, version)
    p = service.preview(session, user, rule_id, version)
    versions = service.rule_versions(session, rule_id)
    active = next((r for r in versions if r.state == "active"), None)
    return render(
        request,
        "benefits/preview.html",
        user,
        row=row,
        rule=domain.parse_rule(row.definition),
        active=domain.parse_rule(active.definition) if active else None,
        preview=p,
        mine=service.manageable(session, user),
        labels=labels(),
    )


@router.post("/officer/benefits/rules/{rule_id}/v/{version}/activate", dependencies=[CsrfChecked])
def activate(rule_id: str, version: int, session: SessionDep, user: CurrentUser) -> Response:
    service.activate(session, user, rule_id, version)
    return RedirectResponse("/officer/benefits/rules?done=activated", status_code=303)
