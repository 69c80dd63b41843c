"""Identity assurance: the guard every context calls before it shows or uses anything
bound to an ID number, and the only ways an account's level changes (a window check by
a clerk, a login through an OpenID Connect provider), each recorded as an event.

Other contexts use these through identity.service (which re-exports them)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.errors import NotFound, PermissionDenied, ValidationFailed
from tongban.identity import sessions
from tongban.identity.domain import (
    APPLICANT_ROLES,
    ASSURANCE_LABELS,
    PROVEN,
    WINDOW_CHECK_LABELS,
    AssuranceLevel,
    Role,
    WindowCheckMethod,
    is_raise,
    meets,
    validate_credit_code,
    validate_id_number,
)
from tongban.identity.models import Account, AccountEvent

#: What a resident is told when a page or call needs a proven identity.
HOW_TO_RAISE = (
    "请携带本人身份证（企业请携带营业执照及经办人身份证）到任一政务服务窗口核验身份，"
    "或通过统一身份认证平台登录后再试"
)


class AssuranceRequired(PermissionDenied):
    """403: the account's identity is not proven well enough for this."""

    type = "assurance-required"
    title = "身份未核验"


class Action:
    """account_event.action values."""

    CREATED = "created"
    WINDOW_CHECK = "window_check"
    OIDC_LOGIN = "oidc_login"


def level_of(account: Account) -> AssuranceLevel | None:
    try:
        return AssuranceLevel(account.assurance_level) if account.assurance_level else None
    except ValueError:
        return None


def level_label(account: Account) -> str:
    level = level_of(account)
    return ASSURANCE_LABELS[level] if level else "不适用（工作人员）"


def is_proven(account: Account | None, level: AssuranceLevel = PROVEN) -> bool:
    """Whether `account` is an applicant whose identity is proven to at least `level`."""
    return (
        account is not None
        and Role(account.role) in APPLICANT_ROLES
        and meets(account.assurance_level, level)
    )


def require_assurance(account: Account, level: AssuranceLevel = PROVEN) -> None:
    """Refuse (403 problem+json, type `assurance-required`, detail in Chinese saying how to
    raise the level) unless `account` is an applicant proven to at least `level`. Called
    by every service that shows or uses data bound to the account's ID number or credit
    code: the licence wallet and presentations, the data-use log, medical records."""
    if is_proven(account, level):
        return
    current = level_label(account)
    raise AssuranceRequired(
        f"此项内容与身份证件号码绑定，须先核验本人身份（当前：{current}）。{HOW_TO_RAISE}"
    )


def _end_sessions_after_change(session: Session, account: Account, keep: uuid.UUID | None) -> None:
    """A level change ends the account's other sessions and its API tokens: whatever was
    signed in before the proof was signed in at the old level."""
    sessions.end_sessions(
        session, account.id, sessions.EndReason.ASSURANCE_CHANGED, keep=keep, revoke_tokens=True
    )


def change_assurance(
    session: Session,
    account: Account,
    to: AssuranceLevel,
    *,
    action: str,
    actor: Account | None,
    reason: str,
    evidence: dict[str, Any],
    keep_session: uuid.UUID | None = None,
) -> AccountEvent | None:
    """Raise `account` to `to` and record why (an account_event row, which joins the audit
    chain); ends its other sessions. A level is never lowered here; the same level again
    is no change and records nothing (returns None)."""
    if Role(account.role) not in APPLICANT_ROLES:
        raise ValidationFailed("只有个人或法人账户有身份核验等级", type="not-an-applicant")
    if not is_raise(account.assurance_level, to):
        return None
    event = AccountEvent(
        account_id=account.id,
        action=action,
        from_level=account.assurance_level,
        to_level=to.value,
        actor_id=actor.id if actor else None,
        actor_name=actor.display_name if actor else str(evidence.get("provider") or "系统"),
        reason=reason,
        evidence=evidence,
    )
    account.assurance_level = to.value
    session.add(event)
    session.flush()
    _end_sessions_after_change(session, account, keep_session)
    return event


def record_initial_level(
    session: Session,
    account: Account,
    *,
    actor: Account | None = None,
    reason: str = "账户创建",
    evidence: dict[str, Any] | None = None,
) -> AccountEvent:
    """The `created` event of a new applicant account (its first level)."""
    event = AccountEvent(
        account_id=account.id,
        action=Action.CREATED,
        from_level=None,
        to_level=account.assurance_level,
        actor_id=actor.id if actor else None,
        actor_name=actor.display_name if actor else "系统",
        reason=reason,
        evidence=evidence or {},
    )
    session.add(event)
    return event


def account_events(session: Session, account: Account) -> list[AccountEvent]:
    """The account's assurance history, oldest first."""
    return list(
        session.scalars(
            select(AccountEvent)
            .where(AccountEvent.account_id == account.id)
            .order_by(AccountEvent.at, AccountEvent.id)
        )
    )


# --- the window check --------------------------------------------------------------------


def _normalised_identifier(value: str) -> tuple[Role, str]:
    value = (value or "").strip().upper()
    try:
        return Role.RESIDENT, validate_id_number(value)
    except ValueError:
        pass
    try:
        return Role.ENTERPRISE, validate_credit_code(value)
    except ValueError:
        raise ValidationFailed(
            "请填写从证件上读取的身份证号码或统一社会信用代码",
            errors=[{"field": "identifier", "message": "证件号码无效"}],
        ) from None


def find_for_window(session: Session, clerk: Account, identifier: str) -> list[Account]:
    """The applicant accounts registered under the ID number (or credit code) the clerk
    read from the document in front of them. Any window clerk of the federation may check
    anyone physically present: identity does not depend on where one lives."""
    if Role(clerk.role) is not Role.CLERK:
        raise PermissionDenied("只有窗口受理员可以核验身份")
    role, value = _normalised_identifier(identifier)
    return accounts_by_identifier(session, role, value)


def verify_at_window(
    session: Session,
    clerk: Account,
    account_id: uuid.UUID,
    *,
    identifier: str,
    method: WindowCheckMethod | str,
    note: str = "",
) -> Account:
    """Record that a window clerk saw the identity document of the person holding
    `account_id` and that its number (`identifier`, read from the card) is the account's:
    the account rises to window_verified. The event names the clerk and the method."""
    if Role(clerk.role) is not Role.CLERK:
        raise PermissionDenied("只有窗口受理员可以核验身份")
    try:
        how = WindowCheckMethod(method)
    except ValueError:
        raise ValidationFailed(
            "核验方式无效", errors=[{"field": "method", "message": "请选择身份证读卡或证件核验"}]
        ) from None
    account = session.get(Account, account_id)
    if account is None or Role(account.role) not in APPLICANT_ROLES:
        raise NotFound("账户不存在", type="unknown-account")
    _, value = _normalised_identifier(identifier)
    own = account.id_number if account.role == Role.RESIDENT else account.credit_code
    if value != own:
        # The document in front of the clerk is not the one the account was registered
        # with: whoever holds this account is not that person.
        raise ValidationFailed(
            "证件号码与该账户登记的号码不一致，不能核验",
            type="identifier-mismatch",
            errors=[{"field": "identifier", "message": "与账户登记的证件号码不一致"}],
        )
    change_assurance(
        session,
        account,
        AssuranceLevel.WINDOW_VERIFIED,
        action=Action.WINDOW_CHECK,
        actor=clerk,
        reason=f"窗口{WINDOW_CHECK_LABELS[how]}"
        + (f"：{note.strip()[:200]}" if note.strip() else ""),
        evidence={
            "method": how.value,
            "clerk_id": str(clerk.id),
            "clerk_city": clerk.city_code,
        },
    )
    return account


def accounts_by_identifier(session: Session, role: Role, value: str) -> list[Account]:
    """Applicant accounts registered under `value` (ID number or credit code)."""
    col = Account.id_number if role is Role.RESIDENT else Account.credit_code
    return list(
        session.scalars(
            select(Account)
            .where(col == value, Account.role == role.value)
            .order_by(Account.created_at)
        )
    )
