"""重大项目 / 重点任务: supervisors follow major tasks with responsible units, milestones
and progress reports; a milestone past its date and not done is flagged as slipped."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.regions import service as regions
from tongban.tickets.models import MajorTask, MajorTaskUnit, Milestone, ProgressReport
from tongban.tickets.service import common

KIND_LABELS = {"project": "重大项目", "task": "重点任务"}
STATUS_LABELS = {"on_track": "正常推进", "slipped": "节点滞后", "done": "已完成"}


def create_task(
    session: Session,
    actor: Account,
    *,
    kind: str,
    title: str,
    description: str,
    unit_codes: list[str],
    milestones: list[tuple[str, date]],
) -> MajorTask:
    """A supervisor registers a major task of their jurisdiction; the first unit leads."""
    if actor.role != Role.SUPERVISOR or not actor.jurisdiction_code:
        raise PermissionDenied("只有督查督办人员可以登记重大项目/重点任务")
    errors = []
    if kind not in KIND_LABELS:
        errors.append({"field": "kind", "message": "请选择重大项目或重点任务"})
    if not title.strip():
        errors.append({"field": "title", "message": "请填写名称"})
    if not unit_codes:
        errors.append({"field": "units", "message": "请至少选择一个责任单位"})
    if not milestones:
        errors.append({"field": "milestones", "message": "请至少填写一个节点"})
    if errors:
        raise ValidationFailed("任务信息有误", errors=errors)
    task = MajorTask(
        kind=kind,
        title=title.strip()[:120],
        description=description.strip(),
        jurisdiction_code=actor.jurisdiction_code,
        created_by=actor.id,
    )
    session.add(task)
    for i, code in enumerate(dict.fromkeys(unit_codes)):
        a = regions.authority_by_code(session, code)
        task.units.append(MajorTaskUnit(authority_id=a.id, authority_name=a.name, lead=i == 0))
    for name, due in milestones:
        task.milestones.append(Milestone(title=name.strip()[:120], due_date=due))
    session.flush()
    return task


def _visible(actor: Account, task: MajorTask) -> bool:
    if actor.role == Role.SUPERVISOR:
        return task.jurisdiction_code == actor.jurisdiction_code
    if actor.role == Role.OFFICER:
        return any(u.authority_id == actor.authority_id for u in task.units)
    return actor.role == Role.ADMIN


def get_task(session: Session, actor: Account, task_id: uuid.UUID) -> MajorTask:
    task = session.get(MajorTask, task_id)
    if task is None or not _visible(actor, task):
        raise NotFound("任务不存在或无权查看")
    return task


def list_tasks(session: Session, actor: Account) -> list[MajorTask]:
    """The major tasks of the supervisor's jurisdiction, or those the officer's
    authority is responsible for."""
    stmt = select(MajorTask).order_by(MajorTask.created_at.desc())
    if actor.role == Role.SUPERVISOR:
        stmt = stmt.where(MajorTask.jurisdiction_code == actor.jurisdiction_code)
    elif actor.role == Role.OFFICER and actor.authority_id:
        stmt = stmt.where(
            MajorTask.id.in_(
                select(MajorTaskUnit.task_id).where(
                    MajorTaskUnit.authority_id == actor.authority_id
                )
            )
        )
    elif actor.role != Role.ADMIN:
        raise PermissionDenied("当前账户无权查看重大项目/重点任务")
    return list(session.scalars(stmt))


def report_progress(
    session: Session,
    actor: Account,
    task_id: uuid.UUID,
    percent: int,
    text: str,
    milestone_id: uuid.UUID | None = None,
    milestone_done: bool = False,
) -> ProgressReport:
    """A responsible unit reports progress; it may mark a milestone done."""
    task = get_task(session, actor, task_id)
    if actor.role != Role.OFFICER or actor.authority_id is None:
        raise PermissionDenied("只有责任单位可以报送进展")
    errors = []
    if not 0 <= percent <= 100:
        errors.append({"field": "percent", "message": "进度应为 0 至 100"})
    if not text.strip():
        errors.append({"field": "text", "message": "请填写进展情况"})
    if errors:
        raise ValidationFailed("进展报送有误", errors=errors)
    milestone = None
    if milestone_id is not None:
        milestone = next((m for m in task.milestones if m.id == milestone_id), None)
        if milestone is None:
            raise NotFound("节点不存在")
        if milestone_done:
            if milestone.done_at is not None:
                raise Conflict("该节点已完成")
            milestone.done_at = common.now()
    rep = ProgressReport(
        authority_id=actor.authority_id,
        reported_by=actor.id,
        percent=percent,
        text=text.strip(),
        milestone_id=milestone.id if milestone else None,
        at=common.now(),
    )
    task.reports.append(rep)
    refresh_status(task, common.today())
    session.flush()
    return rep


def refresh_status(task: MajorTask, today: date) -> bool:
    """Flag milestones past their date and not done; returns whether a new slip appeared."""
    newly = False
    for m in task.milestones:
        slipped = m.done_at is None and m.due_date < today
        if slipped and not m.slipped:
            newly = True
        m.slipped = slipped
    if task.milestones and all(m.done_at is not None for m in task.milestones):
        task.status = "done"
    elif any(m.slipped for m in task.milestones):
        task.status = "slipped"
    else:
        task.status = "on_track"
    return newly


def flag_slipped(session: Session, today: date) -> int:
    """The worker's pass: flag slipped milestones and tell the supervisors; returns how
    many tasks newly slipped."""
    n = 0
    for task in session.scalars(select(MajorTask).where(MajorTask.status != "done")):
        if refresh_status(task, today):
            n += 1
            common.notify(
                session,
                None,
                "milestone_slipped",
                f"{KIND_LABELS.get(task.kind, '')}“{task.title}”有节点滞后",
                jurisdiction_code=task.jurisdiction_code,
            )
    session.flush()
    return n


def latest_percent(task: MajorTask) -> int:
    return task.reports[-1].percent if task.reports else 0
