"""Use cases of applications (办件). Services take a Session and never commit; every
authorisation decision is taken here, so pages, API, CLI and jobs share it."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from tongban.calendar import service as calendar
from tongban.cases import access, domain, replica, results
from tongban.cases.access import actor_kind as actor_kind
from tongban.cases.access import available_actions as available_actions
from tongban.cases.access import can_see as can_see
from tongban.cases.access import get_case as get_case
from tongban.cases.access import list_cases as list_cases
from tongban.cases.attachments import claim_uploads
from tongban.cases.domain import Action, Actor, CaseState
from tongban.cases.models import Case as Case
from tongban.cases.models import CaseCorrection, CaseEvent, Rating, Rectification
from tongban.cases.submission import Application as Application
from tongban.cases.submission import VerifiedLicence as VerifiedLicence
from tongban.cases.submission import WindowApplicant as WindowApplicant
from tongban.cases.submission import submit_at_window as submit_at_window
from tongban.cases.submission import submit_online as submit_online
from tongban.catalog import service as catalog
from tongban.db import utcnow
from tongban.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from tongban.exchange import service as exchange
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel import events, history, replication

# --- messages applied at the receiving end ---------------------------------------------
# The kernel (replica.CASES) parses each message, checks its sender's right, creates the
# copy from a snapshot or appends a step in order; these react to what it applied.


def on_forwarded(
    session: Session, case: Case, _created: bool, payload: dict[str, Any], _msg: Any
) -> None:
    """The competent jurisdiction takes the case into its queue (on one node the row is
    already there; on a separate node the kernel created it from the snapshot), and its
    receipt goes back to the receiving side (on one node: a no-op there)."""
    if payload.get("subtasks"):
        replica.link_subtasks(session, case, payload["subtasks"])
    if case.handoff != "delivered":
        case.handoff = "delivered"
        ev = history.record(
            session,
            case,
            "forwarded",
            None,
            case.state,
            case.state,
            f"已推送至{case.authority_name}",
        )
        replica.share_step(
            session, case, ev, case.competent_jurisdiction, case.receiving_jurisdiction
        )


def on_status_changed(session: Session, case: Case, payload: dict[str, Any], msg: Any) -> None:
    """A step taken on the other node was applied to this copy (the receiving node's from
    the competent authority, the competent node's from the applicant). 多地联办: a
    sub-task's step goes on to the lead's node, which decides the whole case."""
    if not payload.get("to_lead"):
        rating = {"rating": payload["rating"]} if payload.get("rating") else None
        ev = replica.event_of(case, int(payload["seq"]))
        replica.to_lead(session, case, ev, rating, reached=(msg.target_jurisdiction,))
    if replica.decides_lead_here(session, case):
        assert case.parent is not None
        _maybe_complete_parent(session, case.parent)
    if payload["action"] in domain.RECT_ACTIONS:  # 差评整改: the authority's item follows
        sync_rectification(session, case)
    events.publish(session, events.CaseStepTaken(case.id, str(payload["action"]), case.state))


replication.register(replica.CASES, on_snapshot=on_forwarded, on_change=on_status_changed)


# --- acting ---------------------------------------------------------------------


def act(
    session: Session,
    actor: Account,
    case_id: uuid.UUID,
    action: Action | str,
    comment: str = "",
    result_text: str | None = None,
) -> Case:
    """An officer's step on a case: accept, refuse, request correction, start review,
    approve, deny, issue the result, deliver."""
    action = Action(action)
    if action is Action.REQUEST_CORRECTION:
        # A correction asked for without naming items (the JSON API's plain step): one
        # item that points at the reason, answered with the form or any material.
        item = domain.CorrectionItem("general", "补正说明所列事项", comment, listed=False)
        return request_correction(session, actor, case_id, comment, [item], upload=False)
    case = get_case(session, actor, case_id)
    kind = actor_kind(actor, case)
    if kind is None or kind is Actor.APPLICANT:
        raise PermissionDenied("只有主管部门的审核/审批人员可以办理该办件")
    # State, actor and the rules on the facts (forwarded, a reason, 多地联办 decided):
    # refused here, before licences are asked to verify anything.
    facts = _facts(case, comment, actor=actor)
    domain.next_state(CaseState(case.state), action, kind, facts)
    if action is Action.ISSUE_RESULT and not (result_text or "").strip():
        result_text = "准予办理" if case.state == CaseState.APPROVED else "不予办理决定书"
    if action is Action.APPROVE:
        # Licences verify again what the applicant presented (免提交), and may refuse.
        events.publish(session, events.CaseApproving(case.id))
    return _transition(session, case, action, kind, actor, comment, result_text, facts=facts)


def _facts(
    case: Case, comment: str, score: int | None = None, actor: Account | None = None
) -> domain.StepFacts:
    """What the case's rules look at when `actor` takes a step on `case` with `comment`."""
    proposal = proposal_of(case)
    return domain.StepFacts(
        comment=comment,
        forwarded=case.handoff == "delivered",
        subtask_states=tuple(CaseState(s.state) for s in case.subtasks),
        score=score,
        own_proposal=bool(actor and proposal and proposal.actor_id == actor.id),
    )


def proposal_of(case: Case) -> CaseEvent | None:
    """提交审批: the pending proposal of a case awaiting approval (its event: who proposed,
    when, the opinion), or None."""
    if case.state != CaseState.PENDING_APPROVAL:
        return None
    return next((e for e in reversed(case.events) if e.action == Action.SUBMIT_FOR_APPROVAL), None)


def _transition(
    session: Session,
    case: Case,
    action: Action,
    kind: Actor,
    actor: Account | None,
    comment: str,
    result_text: str | None = None,
    extra: dict[str, Any] | None = None,
    facts: domain.StepFacts | None = None,
    payload: dict[str, Any] | None = None,
) -> Case:
    """Take the step (every caller passes here: the rules hold for officers, applicants
    and the platform alike), record it and tell the other copies."""
    if facts is None:
        facts = _facts(case, comment)
    target = domain.next_state(CaseState(case.state), action, kind, facts)
    # A query below may flush the case early: a stale version is a 409 wherever it shows.
    with history.guarded():
        from_state = case.state
        case.state = target.value
        now = utcnow()
        if action is Action.ACCEPT:
            case.accepted_at = now
            case.deadline = calendar.add_working_days(
                session, calendar.local_date(now), case.time_limit_days
            )
            case.clock_paused_since, case.clock_paused_days = None, 0
        if action is Action.ISSUE_RESULT:
            case.result_text = result_text
        if target in domain.TERMINAL or target is CaseState.DELIVERED:
            case.closed_at = case.closed_at or now
            case.deadline_flag = "ok"
        doc_kind = results.document_kind(action, CaseState(from_state))
        if doc_kind is not None:  # 决定书: generated once, stored by its hash
            results.issue(session, case, doc_kind, comment)
        ev = history.record(
            session, case, action.value, actor, from_state, target.value, comment, payload
        )
    # To the other copy of the case: the applicant acts on the receiving node's copy,
    # the authority (and the system) on the competent node's.
    ends = (case.competent_jurisdiction, case.receiving_jurisdiction)
    source, target_j = ends[::-1] if kind is Actor.APPLICANT else ends
    replica.share_step(session, case, ev, source, target_j, extra)
    if case.parent is not None and target in domain.DECIDED:
        _maybe_complete_parent(session, case.parent)
    if target is CaseState.DELIVERED:
        events.publish(session, delivered(case))  # licences issue what the matter produces
    events.publish(session, events.CaseStepTaken(case.id, action.value, case.state))
    return case


def delivered(case: Case) -> events.CaseDelivered:
    """What cases announce when a case's result is delivered."""
    return events.CaseDelivered(
        case_id=case.id,
        matter_code=case.matter_code,
        authority_id=case.authority_id,
        applicant_type=case.applicant_type,
        applicant_name=case.applicant_name,
        applicant_identifier=case.applicant_identifier,
        approved=any(ev.to_state == CaseState.APPROVED for ev in case.events),
        form_data=dict(case.form_data or {}),
    )


def _maybe_complete_parent(session: Session, parent: Case) -> None:
    """多地联办: decide the whole case once every sub-task is decided — only on the lead's
    (the parent's competent) node. Another node holding the parent (the receiving node
    handling a sub-task itself) would number the decision as the lead does, and the
    lead's own event would then be ignored there: it learns the decision as a change."""
    if not exchange.serves_here(session, parent.competent_jurisdiction):
        return
    outcome = domain.joint_outcome([CaseState(s.state) for s in parent.subtasks])
    waiting = (CaseState.UNDER_REVIEW, CaseState.PENDING_APPROVAL)
    if outcome.complete and parent.state in waiting:
        action = Action.APPROVE if outcome.approved else Action.DENY
        _transition(session, parent, action, Actor.SYSTEM, None, "多地联办子任务已全部办结")


def request_correction(
    session: Session,
    actor: Account,
    case_id: uuid.UUID,
    reason: str,
    items: list[domain.CorrectionItem],
    deadline_days: int = domain.CORRECTION_DAYS_DEFAULT,
    *,
    upload: bool = True,
) -> Case:
    """补正: the officer names every missing or wrong material at once (一次性告知), each
    with why, and the applicant's deadline in working days. Before acceptance the case
    waits; during review the statutory clock pauses until the applicant resubmits. One
    notice per stage: a second one for the same stage is refused (409)."""
    case = get_case(session, actor, case_id)
    kind = actor_kind(actor, case)
    if kind is None or kind is Actor.APPLICANT:
        raise PermissionDenied("只有主管部门的审核/审批人员可以要求补正")
    state = CaseState(case.state)
    facts = _facts(case, reason)
    # State, actor, forwarded (409s) first; a missing reason is reported by the notice's
    # own rules below, with every other incomplete field at once.
    domain.next_state(state, Action.REQUEST_CORRECTION, kind, _facts(case, reason or "…"))
    stage = domain.correction_stage(state)
    domain.check_correction(
        reason, items, deadline_days, {c.stage for c in case.corrections}, stage.value
    )
    today = calendar.local_date(utcnow())
    listed = _material_codes(session, case)
    notice = CaseCorrection(
        stage=stage.value,
        reason=reason.strip(),
        items=[
            {
                "code": i.code,
                "name": i.name.strip(),
                "reason": i.reason.strip(),
                "listed": i.code in listed,
                "upload": upload,
            }
            for i in items
        ],
        deadline_days=deadline_days,
        deadline=calendar.add_working_days(session, today, deadline_days),
        requested_by=actor.display_name[:80],
    )
    case.corrections.append(notice)
    if stage is domain.CorrectionStage.REVIEW:
        case.clock_paused_since = today
    return _transition(
        session,
        case,
        Action.REQUEST_CORRECTION,
        kind,
        actor,
        reason.strip(),
        facts=facts,
        payload={"items": notice.items, "deadline": notice.deadline.isoformat()},
    )


def _material_codes(session: Session, case: Case) -> set[str]:
    try:
        return {m.code for m in catalog.get_matter(session, case.matter_code).materials}
    except NotFound:
        return set()


def open_correction(case: Case) -> CaseCorrection | None:
    """The correction notice the case waits on, if any."""
    return next((c for c in case.corrections if c.status == "open"), None)


def resubmit(
    session: Session,
    actor: Account,
    case_id: uuid.UUID,
    form_data: dict[str, Any] | None = None,
    attachment_ids: list[uuid.UUID] | None = None,
    comment: str = "",
) -> Case:
    """补正: the applicant corrects the form and/or uploads a file for each item of the
    notice (an item's uploads carry its code) and resubmits; the case returns to where
    the correction was asked (intake or review), and a paused clock resumes with the
    deadline moved by the working days it stood still."""
    case = get_case(session, actor, case_id)
    if actor_kind(actor, case) is not Actor.APPLICANT:
        raise PermissionDenied("只有申请人本人可以补正")
    if form_data is not None:
        matter = catalog.get_matter(session, case.matter_code)
        catalog.validate_form(matter, form_data)
        case.form_data = form_data
    uploads = claim_uploads(session, actor, attachment_ids or [])
    notice = open_correction(case)
    if notice is not None and CaseState(case.state) in domain.AWAITING_CORRECTION:
        answered = {a.material_code for a in uploads}
        missing = [
            FieldError(f"item_{i['code']}", f"请上传“{i['name']}”的补正材料")
            for i in notice.items
            if i.get("upload", True) and i["code"] not in answered
        ]
        if missing:
            raise ValidationFailed("还有补正事项未上传材料", errors=missing)
    for att in uploads:
        case.attachments.append(att)
    if notice is not None and CaseState(case.state) in domain.AWAITING_CORRECTION:
        notice.status, notice.answered_at = "answered", utcnow()
    _resume_clock(session, case)
    return _transition(session, case, Action.RESUBMIT, Actor.APPLICANT, actor, comment or "已补正")


def _resume_clock(session: Session, case: Case) -> None:
    """The statutory clock runs again: the deadline moves by the working days it stood."""
    if case.clock_paused_since is None or case.state != CaseState.REVIEW_CORRECTION:
        return
    today = calendar.local_date(utcnow())
    paused = max(0, calendar.working_days_between(session, case.clock_paused_since, today))
    if case.deadline is not None:
        case.deadline = calendar.add_working_days(session, case.deadline, paused)
    case.clock_paused_days = (case.clock_paused_days or 0) + paused
    case.clock_paused_since = None


def clock_of(session: Session, case: Case) -> domain.Clock | None:
    """The statutory clock of an accepted case: days used of the limit, paused since."""
    if case.accepted_at is None:
        return None
    start = calendar.local_date(case.accepted_at)
    end = case.clock_paused_since or calendar.local_date(case.closed_at or utcnow())
    elapsed = max(0, calendar.working_days_between(session, start, end))
    return domain.clock(
        case.time_limit_days, elapsed, case.clock_paused_days or 0, case.clock_paused_since
    )


def rate(
    session: Session, actor: Account, case_id: uuid.UUID, score: int, comment: str = ""
) -> Rating:
    """好差评: the applicant rates a delivered case; 1–2 opens a rectification item."""
    case = get_case(session, actor, case_id)
    if actor_kind(actor, case) is not Actor.APPLICANT:
        raise PermissionDenied("只有申请人本人可以评价")
    try:
        domain.validate_score(score)
    except ValueError as e:
        raise ValidationFailed(str(e), errors=[{"field": "score", "message": str(e)}]) from e
    _transition(  # a 差评 without a reason is refused by the machine (422, comment)
        session,
        case,
        Action.RATE,
        Actor.APPLICANT,
        actor,
        f"{score} 星：{comment}".strip("："),
        extra={"rating": {"score": score, "comment": comment}},
        facts=_facts(case, comment, score),
    )
    rating = Rating(case_id=case.id, score=score, comment=comment)
    session.add(rating)
    session.flush()
    if domain.rating_opens_rectification(score):
        session.add(
            Rectification(
                case_id=case.id, authority_id=case.authority_id, rating_id=rating.id, reason=comment
            )
        )
        session.flush()
    return rating


#: A queue's badge counts up to this many cases and shows "999+" beyond: a bounded
#: index read however long the queue (issue 14).
QUEUE_COUNT_CAP = 999


def queue_counts(session: Session, actor: Account) -> list[tuple[CaseState, int]]:
    """The officer's queues (per their duty, `domain.DUTY_QUEUES`) with how many cases
    wait in each, over what the officer may see: at most QUEUE_COUNT_CAP + 1 each (more
    shows as "999+"), one statement of a bounded count per queue, each read from the
    index on (authority, state, handoff)."""
    states = domain.DUTY_QUEUES.get(actor.duty or "", ())
    if actor.role != Role.OFFICER or not states:
        return []
    visible = access.visible_clause(actor)
    bounded = [
        select(func.count())
        .select_from(
            select(Case.id).where(visible, Case.state == s.value).limit(QUEUE_COUNT_CAP + 1)
            .subquery()
        )
        .scalar_subquery()
        for s in states
    ]  # fmt: skip
    row = session.execute(select(*bounded)).one()
    return [(s, int(n)) for s, n in zip(states, row, strict=True)]


def case_by_id(session: Session, case_id: uuid.UUID) -> Case:
    """A case by id with no access check, for a context reacting to what cases announced
    (kernel.events): the publisher has checked who acts."""
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound("办件不存在", type="unknown-case")
    return case


def rating_for(session: Session, case: Case) -> Rating | None:
    return session.scalar(select(Rating).where(Rating.case_id == case.id))


def list_rectifications(
    session: Session, actor: Account, status: str | None = None
) -> list[Rectification]:
    """差评整改 items of the officer's authority (or of the supervisor's jurisdiction), in
    `status`; by default what waits on the reader: an officer's items awaiting the
    authority's reply, a supervisor's escalated ones (申请人多次反馈未解决)."""
    stmt = _rectifications(actor, status).order_by(Rectification.created_at.desc())
    return list(session.scalars(stmt))


def count_rectifications(session: Session, actor: Account, status: str | None = None) -> int:
    """How many items `list_rectifications` lists (one COUNT, no rows loaded)."""
    rows = _rectifications(actor, status).with_only_columns(Rectification.id)
    return int(session.scalar(select(func.count()).select_from(rows.subquery())) or 0)


def _rectifications(actor: Account, status: str | None) -> Select[Rectification]:
    stmt = select(Rectification)
    if actor.role == Role.OFFICER:
        stmt = stmt.where(Rectification.authority_id == actor.authority_id)
        default = domain.RectState.OPEN.value
    elif actor.role == Role.SUPERVISOR:
        from tongban.regions.models import Authority

        stmt = stmt.join(Authority, Authority.id == Rectification.authority_id).where(
            Authority.jurisdiction_code == actor.jurisdiction_code
        )
        default = domain.RectState.ESCALATED.value
    else:
        raise PermissionDenied("当前账户无权查看整改事项")
    status = status or default
    if status != "all":
        stmt = stmt.where(Rectification.status == status)
    return stmt


def rectification_of(session: Session, case: Case) -> domain.RectStatus | None:
    """The 差评整改 loop of `case` as its history tells it (None: no item was opened)."""
    rating = rating_for(session, case)
    score = rating.score if rating is not None else None
    return domain.rectification_status(score, [e.action for e in case.events])


def reply_rectification(
    session: Session, actor: Account, item_id: uuid.UUID, response: str
) -> Rectification:
    """The authority answers a 差评 with what it changed: a step of the case's history
    (`rectification_reply`), so the applicant hears of it and sees it on the case page,
    on their own node too. Only officers of the competent authority reply."""
    item = session.get(Rectification, item_id)
    if item is None or actor.role != Role.OFFICER or item.authority_id != actor.authority_id:
        raise NotFound("整改事项不存在或无权处理")
    case = get_case(session, actor, item.case_id)
    kind = actor_kind(actor, case)
    if kind is None or kind is Actor.APPLICANT:
        raise PermissionDenied("只有主管部门的人员可以答复整改事项")
    _rect_step(session, case, domain.RectAction.REPLY, kind, actor, response)
    from tongban.audit import service as audit  # the reply is history: in the chain

    audit.record_change(
        session,
        "rectification.replied",
        f"rectification:{item.id}",
        f"account:{actor.id}",
        before={"status": domain.RectState.OPEN.value},
        after={"status": item.status, "response_digest": audit.digest(response, session)},
        case_id=item.case_id,
    )
    return item


def answer_rectification(
    session: Session, actor: Account, case_id: uuid.UUID, resolved: bool, reason: str = ""
) -> domain.RectStatus:
    """The applicant answers the authority's reply: 已解决 closes the item; 未解决 (with
    a reason) reopens it for the authority, up to `RECT_REOPENS_MAX` times, and then
    escalates it to the supervisors of the authority's jurisdiction."""
    case = get_case(session, actor, case_id)
    if actor_kind(actor, case) is not Actor.APPLICANT:
        raise PermissionDenied("只有申请人本人可以确认整改结果")
    status = rectification_of(session, case)
    if status is None:
        raise Conflict("该办件没有差评整改事项", type="no-rectification")
    action = domain.rectification_answer(resolved, status.reopens)
    text = reason if not resolved else (reason or "已解决")
    _rect_step(session, case, action, Actor.APPLICANT, actor, text, status)
    after = rectification_of(session, case)
    assert after is not None
    return after


def _rect_step(
    session: Session,
    case: Case,
    action: domain.RectAction,
    kind: Actor,
    actor: Account,
    text: str,
    status: domain.RectStatus | None = None,
) -> None:
    """A step of the 差评整改 loop: checked by its machine, recorded in the case's history
    (the case stays 已评价), sent to the other copy, and the authority's item follows."""
    status = status or rectification_of(session, case)
    if status is None or case.state != CaseState.RATED:
        raise Conflict("该办件没有差评整改事项", type="no-rectification")
    facts = domain.RectFacts(text=text, reopens=status.reopens)
    domain.RECT_MACHINE.next_state(status.state, action, kind, facts)
    ev = history.record(session, case, action.value, actor, case.state, case.state, text.strip())
    ends = (case.competent_jurisdiction, case.receiving_jurisdiction)
    source, target = ends[::-1] if kind is Actor.APPLICANT else ends
    replica.share_step(session, case, ev, source, target)
    sync_rectification(session, case)
    events.publish(session, events.CaseStepTaken(case.id, action.value, case.state))


def sync_rectification(session: Session, case: Case) -> None:
    """The authority's item (held on the competent node) follows the loop's history:
    its status, the latest reply, when it ended."""
    item = session.scalar(select(Rectification).where(Rectification.case_id == case.id))
    status = rectification_of(session, case)
    if item is None or status is None:
        return
    item.status = status.state.value
    replies = [e for e in case.events if e.action == domain.RectAction.REPLY]
    if replies:
        item.response = replies[-1].comment
    ended = status.state in (domain.RectState.RESOLVED, domain.RectState.ESCALATED)
    item.closed_at = (item.closed_at or utcnow()) if ended else None
    session.flush()


# --- deadlines (worker) ------------------------------------------------------------


def refresh_deadlines(session: Session, today: date, warning_days: int) -> dict[str, int]:
    """Mark open cases whose deadline approaches or has passed; returns counts per flag."""
    counts = {"ok": 0, "approaching": 0, "overdue": 0}
    flag_for = calendar.deadline_flagger(session, today, warning_days)
    stmt = select(Case).where(
        Case.state.in_([s.value for s in domain.CLOCK_RUNNING]), Case.deadline.is_not(None)
    )
    for case in session.scalars(stmt):
        assert case.deadline is not None
        flag = flag_for(case.deadline)
        counts[flag] += 1
        if case.deadline_flag != flag:
            case.deadline_flag = flag
    session.flush()
    return counts


# --- corrections not answered (worker) -------------------------------------------------


def lapse_corrections(session: Session, today: date) -> dict[str, int]:
    """Open correction notices past their deadline: a reminder first (an event in the
    case's history, which notifications hear), then, once the grace period after it has
    passed, the case is closed as withdrawn (视为撤回). Only the node serving the
    competent authority acts: the steps travel to the other copy."""
    counts = {"reminded": 0, "withdrawn": 0}
    stmt = (
        select(CaseCorrection)
        .join(Case, Case.id == CaseCorrection.case_id)
        .where(
            CaseCorrection.status == "open",
            CaseCorrection.deadline < today,
            Case.state.in_([s.value for s in domain.AWAITING_CORRECTION]),
        )
    )
    for notice in list(session.scalars(stmt)):
        case = notice.case
        if not exchange.serves_here(session, case.competent_jurisdiction):
            continue
        grace_end = None
        if notice.reminded_on is not None:
            grace_end = calendar.add_working_days(
                session, max(notice.deadline, notice.reminded_on), domain.CORRECTION_GRACE_DAYS
            )
        due = domain.correction_due(today, notice.deadline, notice.reminded_on, grace_end)
        if due is domain.CorrectionDue.REMIND:
            _remind(session, case, notice, today)
            counts["reminded"] += 1
        elif due is domain.CorrectionDue.WITHDRAW:
            notice.status = "lapsed"
            _transition(
                session,
                case,
                Action.WITHDRAW,
                Actor.SYSTEM,
                None,
                f"补正期限 {notice.deadline.isoformat()} 已过，经提醒后仍未补正，视为撤回申请",
            )
            counts["withdrawn"] += 1
    session.flush()
    return counts


def _remind(session: Session, case: Case, notice: CaseCorrection, today: date) -> None:
    grace = calendar.add_working_days(
        session, max(notice.deadline, today), domain.CORRECTION_GRACE_DAYS
    )
    notice.reminded_on = today
    with history.guarded():
        ev = history.record(
            session,
            case,
            "correction_reminder",
            None,
            case.state,
            case.state,
            f"补正期限已过，请于 {grace.isoformat()} 前补正，逾期视为撤回申请",
            {"deadline": notice.deadline.isoformat(), "grace_until": grace.isoformat()},
        )
    replica.share_step(session, case, ev, case.competent_jurisdiction, case.receiving_jurisdiction)
    events.publish(session, events.CaseStepTaken(case.id, "correction_reminder", case.state))
