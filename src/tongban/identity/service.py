"""Accounts, login and API tokens. Authorisation helpers every context calls."""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import uuid
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.config import get_settings
from tongban.db import utcnow
from tongban.errors import Conflict, NotAuthenticated, NotFound, PermissionDenied, ValidationFailed
from tongban.identity.domain import (
    APPLICANT_ROLES,
    Duty,
    Role,
    validate_credit_code,
    validate_id_number,
)
from tongban.identity.models import Account, ApiToken

_hasher = PasswordHasher()
TOKEN_LIFETIME = timedelta(hours=12)
#: Used to spend the same time on unknown usernames as on wrong passwords.
_DUMMY_HASH = _hasher.hash("tongban-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_account(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role | str,
    display_name: str,
    id_number: str | None = None,
    credit_code: str | None = None,
    phone: str | None = None,
    jurisdiction_code: str | None = None,
    city_code: str | None = None,
    authority_id: uuid.UUID | None = None,
    duty: Duty | str | None = None,
) -> Account:
    """Create an account after validating what its role requires."""
    role = Role(role)
    errors = []
    if not re.fullmatch(r"[A-Za-z0-9_.-]{3,64}", username or ""):
        errors.append({"field": "username", "message": "用户名须为 3–64 位字母、数字或 _ . -"})
    if not display_name.strip():
        errors.append({"field": "display_name", "message": "请填写姓名或名称"})
    if len(password) < 8:
        errors.append({"field": "password", "message": "密码至少 8 位"})
    if role is Role.RESIDENT:
        try:
            id_number = validate_id_number(id_number or "")
        except ValueError as e:
            errors.append({"field": "id_number", "message": str(e)})
    if role is Role.ENTERPRISE:
        try:
            credit_code = validate_credit_code(credit_code or "")
        except ValueError as e:
            errors.append({"field": "credit_code", "message": str(e)})
    if role is Role.OFFICER and authority_id is None:
        errors.append({"field": "authority_id", "message": "审核/审批人员必须隶属于一个部门"})
    if role is Role.CLERK and city_code is None:
        errors.append({"field": "city_code", "message": "窗口受理员必须隶属于一个城市"})
    if errors:
        raise ValidationFailed("账户信息有误", errors=errors)
    if session.scalar(select(Account.id).where(Account.username == username)):
        raise Conflict(f"用户名 {username} 已被使用", type="username-taken")
    account = Account(
        username=username,
        password_hash=hash_password(password),
        role=role.value,
        display_name=display_name,
        id_number=id_number,
        credit_code=credit_code,
        phone=phone,
        jurisdiction_code=jurisdiction_code,
        city_code=city_code,
        authority_id=authority_id,
        duty=Duty(duty).value if duty else (Duty.REVIEWER.value if role is Role.OFFICER else None),
    )
    session.add(account)
    session.flush()
    return account


def authenticate(session: Session, username: str, password: str) -> Account:
    """The account for these credentials; counts failures and locks after too many."""
    settings = get_settings()
    account = session.scalar(select(Account).where(Account.username == username))
    now = utcnow()
    if account is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password + "x")
        raise NotAuthenticated("用户名或密码错误", type="bad-credentials")
    if account.locked_until and account.locked_until > now:
        raise NotAuthenticated(
            "登录失败次数过多，账户已暂时锁定，请稍后再试", type="account-locked"
        )
    try:
        _hasher.verify(account.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        account.failed_logins += 1
        if account.failed_logins >= settings.login_max_failures:
            account.locked_until = now + timedelta(minutes=settings.login_lock_minutes)
            account.failed_logins = 0
        session.flush()
        raise NotAuthenticated("用户名或密码错误", type="bad-credentials") from None
    if not account.is_active:
        raise NotAuthenticated("账户已停用", type="account-disabled")
    account.failed_logins = 0
    account.locked_until = None
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    return account


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, account: Account, name: str = "api") -> tuple[str, datetime]:
    """A new bearer token for `account`; the clear text is returned once and never stored."""
    token = "tb_" + secrets.token_urlsafe(32)
    expires = utcnow() + TOKEN_LIFETIME
    session.add(
        ApiToken(
            account_id=account.id, token_hash=_token_hash(token), name=name, expires_at=expires
        )
    )
    session.flush()
    return token, expires


def account_for_token(session: Session, token: str) -> Account:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise NotAuthenticated("访问令牌无效或已过期", type="invalid-token")
    account = session.get(Account, row.account_id)
    if account is None or not account.is_active:
        raise NotAuthenticated("访问令牌无效或已过期", type="invalid-token")
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=5):
        row.last_used_at = now
    return account


def revoke_token(session: Session, account: Account, token: str) -> None:
    """Revoke one of `account`'s own tokens (someone else's token is refused as unknown)."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None or row.account_id != account.id:
        raise NotFound("令牌不存在", type="unknown-token")
    if row.revoked_at is None:
        row.revoked_at = utcnow()


def get_account(session: Session, account_id: uuid.UUID) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("账户不存在")
    return account


def account_by_username(session: Session, username: str) -> Account | None:
    return session.scalar(select(Account).where(Account.username == username))


def require_role(account: Account, *roles: Role) -> None:
    """Refuse unless `account` has one of `roles`."""
    if Role(account.role) not in roles:
        raise PermissionDenied("当前账户无权进行此操作")


def is_applicant(account: Account) -> bool:
    return Role(account.role) in APPLICANT_ROLES


def applicant_identifier(account: Account) -> str:
    return (account.id_number if account.role == Role.RESIDENT else account.credit_code) or ""


def register_applicant(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str,
    city_code: str,
    id_number: str | None = None,
    credit_code: str | None = None,
    phone: str | None = None,
) -> Account:
    """Self-registration: only residents and enterprises may register themselves, in a
    city of the federation; staff accounts are created by operators."""
    from tongban.regions import service as regions

    if role not in (Role.RESIDENT, Role.ENTERPRISE):
        raise ValidationFailed(
            "只能注册个人或法人账户", errors=[{"field": "role", "message": "无效"}]
        )
    try:
        city = regions.get_city(session, city_code)
    except NotFound:
        raise ValidationFailed(
            "所在城市无效", errors=[{"field": "city_code", "message": "请选择所在城市"}]
        ) from None
    col = Account.id_number if role == Role.RESIDENT else Account.credit_code
    value = id_number if role == Role.RESIDENT else credit_code
    try:
        value = (
            validate_id_number(value or "")
            if role == Role.RESIDENT
            else validate_credit_code(value or "")
        )
    except ValueError:
        pass  # create_account reports it with the field name
    else:
        if session.scalar(select(Account.id).where(col == value)):
            field = "id_number" if role == Role.RESIDENT else "credit_code"
            raise Conflict(
                "该证件号码已注册，请直接登录",
                type="identifier-taken",
                errors=[{"field": field, "message": "已注册"}],
            )
    return create_account(
        session,
        username=username,
        password=password,
        role=role,
        display_name=display_name,
        id_number=id_number if role == Role.RESIDENT else None,
        credit_code=credit_code if role == Role.ENTERPRISE else None,
        phone=phone,
        jurisdiction_code=city.jurisdiction_code,
        city_code=city.code,
    )
