"""Staff roles: an administrator changes an account's role and post (duty, department,
city, jurisdiction). Each change is an `account_event` (action role_changed, from and to
in its evidence, the reason beside it) and so an entry of the audit chain; the account's
sessions and API tokens end, so that nobody keeps the powers of a role they lost.

Other contexts and the entrypoints use these through identity.service (which re-exports
them)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tongban.errors import NotFound, PermissionDenied, ValidationFailed
from tongban.identity import sessions
from tongban.identity.domain import (
    APPLICANT_ROLES,
    ASSIGNABLE_ROLES,
    POST_OF_ROLE,
    ROLE_LABELS,
    Duty,
    Post,
    Role,
    assignable_role,
    role_reason_problem,
)
from tongban.identity.models import Account, AccountEvent

#: account_event.action of a change of role or post (assurance.Action holds the others).
ROLE_CHANGED = "role_changed"


def _require_admin(actor: Account) -> None:
    if actor.role != Role.ADMIN:
        raise PermissionDenied("只有平台管理员可以变更账户角色")


def _account(session: Session, account_id: uuid.UUID) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("账户不存在", type="unknown-account")
    return account


@dataclass(frozen=True)
class _Post:
    """Where an account is posted after the change."""

    duty: str | None
    authority_id: uuid.UUID | None
    city_code: str | None
    jurisdiction_code: str | None

    def state(self, role: str) -> dict[str, Any]:
        """The values the event records (JSON: the authority id as text)."""
        return {
            "role": role,
            "duty": self.duty,
            "authority_id": None if self.authority_id is None else str(self.authority_id),
            "city_code": self.city_code,
            "jurisdiction_code": self.jurisdiction_code,
        }


def _refuse(field: str, message: str, detail: str = "角色变更信息有误") -> ValidationFailed:
    return ValidationFailed(detail, errors=[{"field": field, "message": message}])


def _resolve_post(
    session: Session,
    account: Account,
    role: Role,
    *,
    duty: Duty | str | None,
    authority_id: uuid.UUID | None,
    city_code: str | None,
    jurisdiction_code: str | None,
) -> _Post:
    """The post `account` holds in `role`: what the caller names, else what it holds now,
    checked against the reference data (an unknown department, city or jurisdiction is a
    422 naming the field, never a foreign-key failure)."""
    from tongban.regions import service as regions

    post = POST_OF_ROLE[role]
    if post is Post.AUTHORITY:
        new_duty = Duty.REVIEWER
        if duty:
            try:
                new_duty = Duty(duty)
            except ValueError:
                raise _refuse("duty", "职责应为受理/审核（reviewer）或审批（approver）") from None
        elif account.role == Role.OFFICER and account.duty:
            new_duty = Duty(account.duty)
        if authority_id is None and account.role == Role.OFFICER:
            authority_id = account.authority_id
        if authority_id is None:
            raise _refuse("authority_id", "请选择所属部门", "审核/审批人员必须隶属于一个部门")
        try:
            authority = regions.get_authority(session, authority_id)
        except NotFound:
            raise _refuse("authority_id", "部门不存在") from None
        return _Post(new_duty.value, authority.id, authority.city_code, authority.jurisdiction_code)
    if post is Post.CITY:
        code = (city_code or "").strip() or account.city_code
        if not code:
            raise _refuse("city_code", "请选择所在城市", f"{ROLE_LABELS[role]}必须隶属于一个城市")
        try:
            city = regions.get_city(session, code)
        except NotFound:
            raise _refuse("city_code", "城市不存在") from None
        return _Post(None, None, city.code, city.jurisdiction_code)
    if post is Post.JURISDICTION:
        code = (jurisdiction_code or "").strip() or account.jurisdiction_code
        if not code:
            raise _refuse("jurisdiction_code", "请选择所属辖区", "督查督办人员必须隶属于一个辖区")
        try:
            jurisdiction = regions.get_jurisdiction(session, code)
        except NotFound:
            raise _refuse("jurisdiction_code", "辖区不存在") from None
        return _Post(None, None, None, jurisdiction.code)
    # The administrator has no post: whatever the account was posted to stays recorded.
    return _Post(None, None, account.city_code, account.jurisdiction_code)


def change_role(
    session: Session,
    admin: Account,
    account_id: uuid.UUID,
    role: Role | str,
    *,
    reason: str,
    duty: Duty | str | None = None,
    authority_id: uuid.UUID | None = None,
    city_code: str | None = None,
    jurisdiction_code: str | None = None,
) -> Account:
    """An administrator gives a staff account `role` and the post it needs: an officer a
    department (`authority_id`; its city and jurisdiction follow) and a duty; a window
    clerk, 12345 operator, dispatcher, grid inspector or hospital cashier a city
    (`city_code`; its jurisdiction follows); a supervisor a jurisdiction. What is not
    named stays as it is where the role allows (a city role keeps the account's city).

    Refused: a caller who is not an administrator (403), an unknown account (404), an
    applicant account or role, an administrator's change of their own account (another
    administrator must do it: nobody removes their own admin role, so one always remains),
    no reason, an unknown department, city or jurisdiction (422 naming the field).

    A change is an `account_event` (action role_changed, evidence {from, to}, the reason)
    and so an entry of the audit chain, by `admin`; every session and API token of the
    account ends. Nothing changed: no event, the sessions stay."""
    _require_admin(admin)
    account = _account(session, account_id)
    try:
        new_role = assignable_role(str(role))
    except ValueError as e:
        raise _refuse("role", str(e), "只能变更工作人员的角色") from None
    if Role(account.role) in APPLICANT_ROLES:
        raise _refuse("role", "个人、法人账户的角色不能变更", "只能变更工作人员的角色")
    if account.id == admin.id:
        raise ValidationFailed(
            "不能变更自己的角色，请由另一位平台管理员办理",
            type="own-role",
            errors=[{"field": "role", "message": "不能变更自己的角色"}],
        )
    problem = role_reason_problem(reason)
    if problem:
        raise _refuse("reason", problem, problem)
    post = _resolve_post(
        session,
        account,
        new_role,
        duty=duty,
        authority_id=authority_id,
        city_code=city_code,
        jurisdiction_code=jurisdiction_code,
    )
    before = _Post(
        account.duty, account.authority_id, account.city_code, account.jurisdiction_code
    ).state(account.role)
    after = post.state(new_role.value)
    if before == after:
        return account
    account.role = new_role.value
    account.duty = post.duty
    account.authority_id = post.authority_id
    account.city_code = post.city_code
    account.jurisdiction_code = post.jurisdiction_code
    session.add(
        AccountEvent(
            account_id=account.id,
            action=ROLE_CHANGED,
            from_level=account.assurance_level,
            to_level=account.assurance_level,
            actor_id=admin.id,
            actor_name=admin.display_name,
            reason=reason.strip(),
            evidence={"from": before, "to": after},
        )
    )
    session.flush()
    sessions.end_sessions(session, account.id, sessions.EndReason.ROLE_CHANGED, revoke_tokens=True)
    return account


def staff_accounts(
    session: Session,
    admin: Account,
    *,
    role: str | None = None,
    query: str | None = None,
    limit: int = 200,
) -> list[Account]:
    """Staff accounts for the administrator's list, by role then username: of one `role`
    (an unknown one lists nothing), whose username or name contains `query`."""
    _require_admin(admin)
    stmt = select(Account).where(Account.role.in_([r.value for r in ASSIGNABLE_ROLES]))
    if role:
        stmt = stmt.where(Account.role == role)
    text = (query or "").strip()
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
        stmt = stmt.where(
            or_(
                Account.username.ilike(pattern, escape="\\"),
                Account.display_name.ilike(pattern, escape="\\"),
            )
        )
    return list(session.scalars(stmt.order_by(Account.role, Account.username).limit(limit)))


def staff_account(session: Session, admin: Account, account_id: uuid.UUID) -> Account:
    """A staff account, for the administrator (an applicant's is not found here)."""
    _require_admin(admin)
    account = _account(session, account_id)
    if Role(account.role) in APPLICANT_ROLES:
        raise NotFound("账户不存在", type="unknown-account")
    return account


def role_events(session: Session, account: Account) -> list[AccountEvent]:
    """The account's changes of role, oldest first."""
    return list(
        session.scalars(
            select(AccountEvent)
            .where(AccountEvent.account_id == account.id, AccountEvent.action == ROLE_CHANGED)
            .order_by(AccountEvent.at, AccountEvent.id)
        )
    )
