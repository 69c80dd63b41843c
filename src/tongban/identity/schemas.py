from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tongban.identity.domain import ROLE_REASON_MAX, Duty, Role


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class AccountPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    username: str
    role: str
    display_name: str
    jurisdiction_code: str | None
    city_code: str | None
    authority_id: uuid.UUID | None
    duty: str | None
    #: Identity assurance of an applicant (self_declared, window_verified, oidc_verified);
    #: null for staff.
    assurance_level: str | None = None


class RegistrationCreate(BaseModel):
    """Self-registration of a resident (ID number) or an enterprise (credit code)."""

    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    #: The policy (length, classes, common passwords …) is applied by the service, with
    #: a Chinese message per rule.
    password: str = Field(max_length=128)
    role: str = Field(default="resident", pattern="^(resident|enterprise)$")
    display_name: str = Field(min_length=1, max_length=80)
    id_number: str | None = Field(default=None, max_length=18)
    credit_code: str | None = Field(default=None, max_length=18)
    phone: str | None = Field(default=None, max_length=20)
    city_code: str = Field(min_length=6, max_length=6)


class PasswordChange(BaseModel):
    """A password change: the current password and the new one (checked by the policy)."""

    current_password: str = Field(max_length=128)
    new_password: str = Field(max_length=128)


class RoleChange(BaseModel):
    """An administrator gives a staff account a role and the post it needs: an officer a
    department (`authority_id`) and a duty; a clerk, 12345 operator, dispatcher, grid
    inspector or hospital cashier a city (`city_code`); a supervisor a jurisdiction
    (`jurisdiction_code`). What is left out stays as it is where the role allows."""

    role: Role = Field(description="工作人员角色（个人、法人账户的角色不能变更）")
    reason: str = Field(min_length=1, max_length=ROLE_REASON_MAX, description="变更原因（必填）")
    duty: Duty | None = Field(default=None, description="审核/审批人员的职责")
    authority_id: uuid.UUID | None = Field(default=None, description="所属部门")
    city_code: str | None = Field(default=None, min_length=6, max_length=6)
    jurisdiction_code: str | None = Field(default=None, min_length=6, max_length=6)


class SessionsEnded(BaseModel):
    ended: int


class AccountEventPublic(BaseModel):
    """One change of an account's identity assurance level."""

    model_config = ConfigDict(from_attributes=True)
    action: str
    from_level: str | None
    to_level: str | None
    actor_id: uuid.UUID | None
    actor_name: str
    reason: str
    evidence: dict[str, Any]
    at: datetime


class AssurancePublic(BaseModel):
    """An account's identity assurance: its level and how it got there."""

    account_id: uuid.UUID
    username: str
    display_name: str
    role: str
    assurance_level: str | None
    proven: bool
    events: list[AccountEventPublic]


class WindowCheckCreate(BaseModel):
    """A window clerk records that they saw the identity document of the account's
    holder: `identifier` is the number read from that document."""

    account_id: uuid.UUID
    identifier: str = Field(min_length=15, max_length=18)
    method: str = Field(pattern="^(id_card_reader|document_check)$")
    note: str = Field(default="", max_length=200)


class WindowSearch(BaseModel):
    """The number read from the identity document at the window."""

    identifier: str = Field(min_length=15, max_length=18)
