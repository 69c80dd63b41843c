from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict


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
