"""Accounts, login and API tokens. Authorisation helpers every context calls."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.orm import Session, make_transient_to_detached

from tongban.config import Settings
from tongban.db import utcnow
from tongban.errors import Conflict, NotAuthenticated, NotFound, PermissionDenied, ValidationFailed
from tongban.identity import throttle

# Re-exported: the assurance guard other contexts call.
from tongban.identity.assurance import AssuranceRequired as AssuranceRequired
from tongban.identity.assurance import account_events as account_events
from tongban.identity.assurance import change_assurance as change_assurance
from tongban.identity.assurance import find_for_window as find_for_window
from tongban.identity.assurance import is_proven as is_proven
from tongban.identity.assurance import record_initial_level as record_initial_level
from tongban.identity.assurance import require_assurance as require_assurance
from tongban.identity.assurance import verify_at_window as verify_at_window
from tongban.identity.domain import (
    APPLICANT_ROLES,
    AssuranceLevel,
    Duty,
    Role,
    validate_credit_code,
    validate_id_number,
)
from tongban.identity.models import Account, ApiToken
from tongban.identity.policy import password_problems

# Re-exported: an administrator's change of a staff account's role.
from tongban.identity.roles import ROLE_CHANGED as ROLE_CHANGED
from tongban.identity.roles import change_role as change_role
from tongban.identity.roles import role_events as role_events
from tongban.identity.roles import staff_account as staff_account
from tongban.identity.roles import staff_accounts as staff_accounts

# Re-exported: the sessions other contexts use.
from tongban.identity.sessions import ActiveSession as ActiveSession
from tongban.identity.sessions import EndReason as EndReason
from tongban.identity.sessions import begin_session as begin_session
from tongban.identity.sessions import end_session as end_session
from tongban.identity.sessions import end_sessions as end_sessions
from tongban.identity.sessions import live_sessions as live_sessions
from tongban.identity.sessions import resume_session as resume_session
from tongban.identity.sessions import revoke_all_tokens as revoke_all_tokens
from tongban.kernel.cache import CACHE_NEUTRAL, Cache
from tongban.kernel.node import settings_of

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
    assurance_level: AssuranceLevel | str | None = None,
    assurance_reason: str = "账户创建",
    assurance_evidence: dict[str, Any] | None = None,
) -> Account:
    """Create an account after validating what its role requires. An applicant starts at
    `assurance_level` (self_declared unless the caller has proof, such as an OIDC login)
    and its `created` event records it; staff have no level."""
    role = Role(role)
    level: AssuranceLevel | None = None
    if role in APPLICANT_ROLES:
        level = AssuranceLevel(assurance_level or AssuranceLevel.SELF_DECLARED)
    errors = []
    if not re.fullmatch(r"[A-Za-z0-9_.-]{3,64}", username or ""):
        errors.append({"field": "username", "message": "用户名须为 3–64 位字母、数字或 _ . -"})
    if not display_name.strip():
        errors.append({"field": "display_name", "message": "请填写姓名或名称"})
    for problem in password_problems(
        password, username=username, identifiers=(id_number, credit_code)
    ):
        errors.append({"field": "password", "message": problem})
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
        assurance_level=level.value if level else None,
    )
    session.add(account)
    session.flush()
    if level is not None:
        record_initial_level(session, account, reason=assurance_reason, evidence=assurance_evidence)
        session.flush()
    return account


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    client: str | None = None,
    settings: Settings | None = None,
) -> Account:
    """The account for these credentials, signing in from `client` (its address).

    Failures are counted per (username, client) and per client, never per account: a
    client past its free failures waits (TooManyRequests, 429) with increasing delays,
    whether or not the username exists, while the owner still signs in from a client
    of their own. An unknown username and a wrong password cost the same hash
    verification, the same writes, and get the same answer."""
    settings = settings or settings_of(session)
    client = client or "unknown"
    throttle.check(session, username, client, settings)
    account = session.scalar(select(Account).where(Account.username == username))
    try:
        # An unknown username costs the same verification (of a dummy hash) as a wrong
        # password, and fails like one.
        _hasher.verify(account.password_hash if account else _DUMMY_HASH, password)
        if account is None:
            raise VerifyMismatchError
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        throttle.record_failure(session, username, client, settings)
        raise NotAuthenticated("用户名或密码错误", type="bad-credentials") from None
    throttle.record_success(session, username, client, settings)
    if not account.is_active:
        raise NotAuthenticated("账户已停用", type="account-disabled")
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    return account


def change_password(
    session: Session,
    account: Account,
    current_password: str,
    new_password: str,
    *,
    keep_session: uuid.UUID | None = None,
    client: str | None = None,
    settings: Settings | None = None,
) -> None:
    """Replace `account`'s password after checking the current one and the policy; every
    other session of the account ends (`keep_session`, the one the change was made in,
    stays) and all its API tokens are revoked.

    Guesses of the current password (from a stolen session) are throttled like sign-in
    from `client`: a wrong one is counted (ValidationFailed, type wrong-current-password,
    after which the caller commits so that the count is kept), too many answer 429."""
    settings = settings or settings_of(session)
    if client is not None:
        throttle.check(session, account.username, client, settings)
    try:
        _hasher.verify(account.password_hash, current_password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        if client is not None:
            throttle.record_failure(session, account.username, client, settings)
        raise ValidationFailed(
            "当前密码不正确",
            type="wrong-current-password",
            errors=[{"field": "current_password", "message": "当前密码不正确"}],
        ) from None
    problems = password_problems(
        new_password,
        username=account.username,
        identifiers=(account.id_number, account.credit_code),
    )
    if not problems and secrets.compare_digest(new_password.encode(), current_password.encode()):
        problems.append("新密码不能与当前密码相同")
    if problems:
        raise ValidationFailed(
            "新密码不符合要求",
            errors=[{"field": "new_password", "message": p} for p in problems],
        )
    account.password_hash = hash_password(new_password)
    end_sessions(
        session, account.id, EndReason.PASSWORD_CHANGED, keep=keep_session, revoke_tokens=True
    )


def admin_end_sessions(session: Session, admin: Account, account_id: uuid.UUID) -> int:
    """An administrator signs an account out everywhere: its sessions end and its API
    tokens are revoked. Returns how many sessions ended."""
    require_role(admin, Role.ADMIN)
    get_account(session, account_id)
    return end_sessions(session, account_id, EndReason.ADMIN, revoke_tokens=True)


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


@dataclass(frozen=True)
class _TokenEntry:
    """What a bearer token's lookup found, kept a few seconds (issue 14)."""

    token_id: uuid.UUID
    expires_at: datetime
    last_used_at: datetime | None
    revoked: bool
    account: tuple[tuple[str, Any], ...]  # the account row's column values
    account_active: bool


#: Bearer tokens, per process, for a few seconds. Any write to api_token or account
#: (a revocation, a password change, a disabled account, a new role) drops the whole
#: cache at once in this process and, when the transaction commits, in every other
#: process (tongban.kernel.cache: PostgreSQL LISTEN/NOTIFY); without a live listener
#: (SQLite, a lost connection) tokens are not cached at all.
_TOKENS: Cache[_TokenEntry | None] = Cache(
    "identity.token", tables={"api_token", "account"}, ttl=5.0, needs_listener=True
)
_ACCOUNT_COLUMNS = tuple(c.key for c in Account.__mapper__.column_attrs)
#: last_used_at is recorded at most this often per token (not a change the cache watches).
_LAST_USED_EVERY = timedelta(minutes=5)


def _load_token(session: Session, token_hash: str) -> _TokenEntry | None:
    row = session.execute(
        select(ApiToken, Account)
        .join(Account, Account.id == ApiToken.account_id)
        .where(ApiToken.token_hash == token_hash)
    ).first()
    if row is None:
        return None
    tok, account = row
    return _TokenEntry(
        tok.id,
        tok.expires_at,
        tok.last_used_at,
        tok.revoked_at is not None,
        tuple((k, getattr(account, k)) for k in _ACCOUNT_COLUMNS),
        bool(account.is_active),
    )


def _attached(session: Session, values: tuple[tuple[str, Any], ...]) -> Account:
    """The account of `values` in `session` as if just read, without a SELECT (the
    session's own copy if it has one)."""
    data = dict(values)
    known = session.identity_map.get(session.identity_key(Account, data["id"]))
    if isinstance(known, Account):
        return known
    account = Account(**data)
    make_transient_to_detached(account)
    session.add(account)
    return account


def account_for_token(session: Session, token: str) -> Account:
    """The active account of a valid bearer token (NotAuthenticated "invalid-token"
    otherwise). One SELECT on a miss, none on a hit of this process's token cache."""
    token_hash = _token_hash(token)
    entry = _TOKENS.get(session, token_hash, lambda: _load_token(session, token_hash))
    now = utcnow()
    if entry is None or entry.revoked or entry.expires_at <= now or not entry.account_active:
        raise NotAuthenticated("访问令牌无效或已过期", type="invalid-token")
    if entry.last_used_at is None or now - entry.last_used_at > _LAST_USED_EVERY:
        session.execute(
            update(ApiToken)
            .where(ApiToken.id == entry.token_id)
            .values(last_used_at=now)
            .execution_options(**CACHE_NEUTRAL)
        )
        _TOKENS.put(session, token_hash, replace(entry, last_used_at=now))
    return _attached(session, entry.account)


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
    client: str | None = None,
    settings: Settings | None = None,
) -> Account:
    """Self-registration: only residents and enterprises may register themselves, in a
    city of the federation; staff accounts are created by operators.

    A username already taken is answered (409), so that a person can choose another; to
    keep that from listing usernames at speed, each such answer counts as a failure of
    `client` (the sign-in throttle's per-client count): the caller commits after a
    Conflict of type username-taken so that the count is kept."""
    from tongban.regions import service as regions

    settings = settings or settings_of(session)
    if client is not None:
        throttle.check_client(session, client, settings)

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
    # Whether an ID number or credit code is already registered is not answered here:
    # that would tell anyone whose number has an account. A self-registered account only
    # declares its number (the lowest assurance level, nothing tied to the number is
    # shown); uniqueness is enforced where the identity is proven (window check, OIDC).
    try:
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
    except Conflict as e:
        if client is not None and e.type == "username-taken":
            throttle.record_client_failure(session, client, settings)
        raise
