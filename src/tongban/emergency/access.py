"""Who may see and do what in the emergency context: duties (domain.Duty) granted per
city or per jurisdiction, supervisors (督查督办) who see every city and are told of
escalations, and the platform administrator. Pages, API, CLI and jobs all ask here."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.emergency.domain import DUTY_LABELS, Duty
from tongban.emergency.models import EmergencyDuty
from tongban.errors import NotFound, PermissionDenied, ValidationFailed
from tongban.identity.domain import STAFF_ROLES, Role
from tongban.identity.models import Account
from tongban.regions import service as regions


def duties_of(session: Session, account: Account) -> list[EmergencyDuty]:
    return list(
        session.scalars(select(EmergencyDuty).where(EmergencyDuty.account_id == account.id))
    )


def _covers(row: EmergencyDuty, jurisdiction: str, city: str | None) -> bool:
    if row.jurisdiction_code != jurisdiction:
        return False
    return row.city_code is None or row.city_code == city


def has_duty(
    session: Session, account: Account, duty: Duty, jurisdiction: str, city: str | None
) -> bool:
    """Whether `account` holds `duty` for `city` of `jurisdiction` (a jurisdiction-wide
    duty covers every city; `city=None` asks for the jurisdiction as a whole)."""
    return any(
        row.duty == duty.value and _covers(row, jurisdiction, city)
        for row in duties_of(session, account)
    )


def require(
    session: Session, account: Account, duty: Duty, jurisdiction: str, city: str | None
) -> None:
    """Refuse (403) unless `account` holds `duty` there."""
    if not has_duty(session, account, duty, jurisdiction, city):
        where = regions.get_city(session, city).name if city else jurisdiction
        raise PermissionDenied(f"须由{where}的应急物资{DUTY_LABELS[duty]}办理", type="no-duty")


def may_view(session: Session, account: Account) -> bool:
    """Reserves and mutual aid are for emergency staff, supervisors and the operator."""
    if account.role in (Role.ADMIN, Role.SUPERVISOR):
        return True
    return bool(duties_of(session, account))


def require_viewer(session: Session, account: Account) -> None:
    if not may_view(session, account):
        raise PermissionDenied("仅应急物资工作人员、督查督办人员可以查看", type="no-duty")


def cities_with(session: Session, account: Account, duty: Duty) -> list[tuple[str, str | None]]:
    """(jurisdiction, city or None for all its cities) where `account` holds `duty`."""
    return [
        (row.jurisdiction_code, row.city_code)
        for row in duties_of(session, account)
        if row.duty == duty.value
    ]


def grant(
    session: Session,
    by: Account | None,
    account: Account,
    duty: Duty,
    *,
    city_code: str | None = None,
    jurisdiction_code: str | None = None,
) -> EmergencyDuty:
    """Give a staff account an emergency duty for a city (or a whole jurisdiction);
    the administrator's act (None: the system, e.g. demo data). Idempotent."""
    if by is not None:
        require_admin(by)
    if account.role not in STAFF_ROLES:
        raise ValidationFailed(
            "应急职责只能授予工作人员账号",
            errors=[{"field": "username", "message": "该账号不是工作人员"}],
        )
    if city_code:
        city = regions.get_city(session, city_code)
        jurisdiction_code = city.jurisdiction_code
    elif jurisdiction_code:
        regions.get_jurisdiction(session, jurisdiction_code)
    else:
        raise ValidationFailed(
            "请指定城市或辖区", errors=[{"field": "city_code", "message": "必填"}]
        )
    row = session.get(EmergencyDuty, (account.id, duty.value))
    if row is None:
        row = EmergencyDuty(account_id=account.id, duty=duty.value)
        session.add(row)
    row.jurisdiction_code = jurisdiction_code
    row.city_code = city_code or None
    row.granted_by = by.id if by is not None else None
    session.flush()
    return row


def require_admin(account: Account) -> None:
    if account.role != Role.ADMIN:
        raise PermissionDenied("只有平台管理员可以授予应急职责")


def account_by_username(session: Session, username: str) -> Account:
    account = session.scalar(select(Account).where(Account.username == username))
    if account is None:
        raise NotFound(f"账号 {username} 不存在", type="unknown-account")
    return account
