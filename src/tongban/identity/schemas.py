from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field


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


class SessionsEnded(BaseModel):
    ended: int
