from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from tongban.db import utcnow
from tongban.errors import Conflict, NotAuthenticated, ValidationFailed
from tongban.identity import service
from tongban.identity.schemas import (
    AccountPublic,
    PasswordChange,
    RegistrationCreate,
    RoleChange,
    SessionsEnded,
    TokenPublic,
)
from tongban.web.deps import CurrentUser, SessionDep, SettingsDep, bearer_token, client_address
from tongban.web.problems import responses

router = APIRouter(prefix="/api/v1", tags=["identity"])


@router.post("/auth/token", response_model=TokenPublic, responses=responses(401, 429))
def token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> TokenPublic:
    """OAuth2 password grant: exchange username and password for a bearer token.

    A wrong password and an unknown username get the same 401; a client that keeps
    failing (for one username, or for any) must wait: 429 with Retry-After."""
    try:
        account = service.authenticate(
            session,
            form.username,
            form.password,
            client=client_address(request),
            settings=settings,
        )
    except NotAuthenticated:
        # The failure count is what throttles guessing: keep it although the request fails.
        session.commit()
        raise
    value, expires = service.issue_token(session, account)
    return TokenPublic(access_token=value, expires_in=int((expires - utcnow()).total_seconds()))


@router.get("/me", response_model=AccountPublic)
def me(account: CurrentUser) -> object:
    """The account the request is authenticated as."""
    return account


async def _token_to_revoke(request: Request) -> str | None:
    """The token named in the body (RFC 7009 form field `token`, or JSON {"token": …});
    never from the URL, which ends up in access logs and browser history."""
    if "token" in request.query_params:
        raise ValidationFailed(
            "访问令牌不能放在网址中，请放在请求体（token 字段）中提交",
            type="token-in-url",
            errors=[{"field": "token", "message": "不能放在网址查询参数中"}],
        )
    content_type = request.headers.get("content-type", "")
    value: object = None
    if content_type.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise ValidationFailed(
                "请求内容不是有效的 JSON", errors=[{"field": "body", "message": "JSON 格式错误"}]
            ) from None
        value = body.get("token") if isinstance(body, dict) else None
    elif content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get("token")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 200:
        raise ValidationFailed("令牌格式错误", errors=[{"field": "token", "message": "格式错误"}])
    return value


_REVOKE_BODY = {
    "requestBody": {
        "required": False,
        "content": {
            media: {
                "schema": {
                    "type": "object",
                    "properties": {"token": {"type": "string", "maxLength": 200}},
                }
            }
            for media in ("application/x-www-form-urlencoded", "application/json")
        },
    }
}


@router.post(
    "/auth/revoke", status_code=204, openapi_extra=_REVOKE_BODY, responses=responses(404, 422)
)
def revoke(
    request: Request,
    account: CurrentUser,
    session: SessionDep,
    token: Annotated[str | None, Depends(_token_to_revoke)],
) -> None:
    """Revoke one of your own tokens: the one in the body's `token` field (form or JSON),
    or without a body the bearer token of this request itself. Never in the URL."""
    if token is None:
        token = bearer_token(request)
    if token is None:
        raise ValidationFailed(
            "请在请求体的 token 字段中提供要作废的令牌",
            errors=[{"field": "token", "message": "必填"}],
        )
    service.revoke_token(session, account, token)


@router.post("/me/password", status_code=204, responses=responses(422, 429))
def change_password(
    request: Request,
    body: PasswordChange,
    account: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> None:
    """Change your password. Every web session and every API token of the account ends,
    the one this request used too: sign in again with the new password. Wrong current
    passwords are throttled like sign-in (429 with Retry-After)."""
    try:
        service.change_password(
            session,
            account,
            body.current_password,
            body.new_password,
            client=client_address(request),
            settings=settings,
        )
    except ValidationFailed as e:
        if e.type == "wrong-current-password":
            session.commit()  # only the failure count was written: keep it
        raise


@router.post(
    "/accounts/{account_id}/sessions/end",
    response_model=SessionsEnded,
    responses=responses(403, 404),
)
def end_account_sessions(
    account_id: uuid.UUID, admin: CurrentUser, session: SessionDep
) -> SessionsEnded:
    """Administrators: sign an account out everywhere (its web sessions end, its API
    tokens are revoked)."""
    return SessionsEnded(ended=service.admin_end_sessions(session, admin, account_id))


@router.put(
    "/accounts/{account_id}/role",
    response_model=AccountPublic,
    responses=responses(403, 404, 422),
)
def change_role(
    account_id: uuid.UUID, body: RoleChange, admin: CurrentUser, session: SessionDep
) -> object:
    """Administrators: give a staff account a role and its post, with a reason. The change
    is an account event in the audit chain (from, to, who, why) and ends every session
    and API token of the account. Refused: an applicant account or role, the caller's own
    account (another administrator changes it), a missing reason, an unknown department,
    city or jurisdiction (422 naming the field). The same role and post again: no change."""
    return service.change_role(
        session,
        admin,
        account_id,
        body.role,
        reason=body.reason,
        duty=body.duty,
        authority_id=body.authority_id,
        city_code=body.city_code,
        jurisdiction_code=body.jurisdiction_code,
    )


@router.post(
    "/accounts", response_model=AccountPublic, status_code=201, responses=responses(409, 422, 429)
)
def register(
    request: Request, body: RegistrationCreate, session: SessionDep, settings: SettingsDep
) -> object:
    """Register a resident (GB 11643 ID number) or an enterprise (GB 32100 credit code).
    The answer does not say whether the number already has an account (409 only for a
    username in use); the account starts at the lowest assurance level."""
    try:
        return service.register_applicant(
            session,
            **body.model_dump(),
            client=client_address(request),
            settings=settings,
        )
    except Conflict as e:
        if e.type == "username-taken":
            session.commit()  # only the client's failure count was written: keep it
        raise
