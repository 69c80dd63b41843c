"""`tongban account …`: staff accounts as an operator manages them from the shell.

`set-role` is the page's and the API's change of role (identity.service.change_role),
made in the name of an administrator's account (`--admin`): the same checks, the same
account event in the audit chain with that administrator as its author, and the
account's sessions and tokens end. Exit codes: 0 done (or nothing to change), 1 refused
(the reason on stderr, in Chinese), 2 a usage error."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from tongban.errors import DomainError, NotFound, ValidationFailed
from tongban.identity import service as identity
from tongban.identity.domain import ROLE_LABELS, Role
from tongban.identity.models import Account
from tongban.kernel.node import cli_node
from tongban.localtime import local_dt
from tongban.regions import service as regions

app = typer.Typer(help="Accounts", no_args_is_help=True)

#: Times are shown as the operators read them.


#: The command's name of each field the service names.
_OPTIONS = {
    "role": "ROLE",
    "reason": "--reason",
    "duty": "--duty",
    "authority": "--authority",
    "authority_id": "--authority",
    "city_code": "--city",
    "jurisdiction_code": "--jurisdiction",
}


def _refused(exc: DomainError) -> typer.Exit:
    """Say why on stderr (the detail, then each option's message) and exit 1."""
    typer.echo(f"未变更：{exc.detail}", err=True)
    for err in exc.errors:
        if err.message and err.message != exc.detail:
            typer.echo(f"  {_OPTIONS.get(err.field, err.field)}：{err.message}", err=True)
    return typer.Exit(1)


def _account(session: Session, username: str, what: str = "账户") -> Account:
    account = identity.account_by_username(session, username)
    if account is None:
        raise NotFound(f"{what} {username} 不存在", type="unknown-account")
    return account


def _authority_id(session: Session, code: str | None) -> uuid.UUID | None:
    if not code:
        return None
    try:
        return regions.authority_by_code(session, code).id
    except NotFound as e:
        raise ValidationFailed(
            e.detail, errors=[{"field": "authority", "message": e.detail}]
        ) from None


def _post(account: Account) -> tuple[str, str | None, uuid.UUID | None, str | None, str | None]:
    return (
        account.role,
        account.duty,
        account.authority_id,
        account.city_code,
        account.jurisdiction_code,
    )


def _label(role: str) -> str:
    try:
        return ROLE_LABELS[Role(role)]
    except ValueError:
        return role


@app.command("set-role")
def set_role(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The staff account's username")],
    role: Annotated[
        str,
        typer.Argument(
            help="clerk, officer, supervisor, admin, hospital, hotline, grid_inspector "
            "or dispatcher"
        ),
    ],
    reason: Annotated[str, typer.Option(help="Why (required; kept with the change)")],
    admin: Annotated[
        str,
        typer.Option(help="Username of the administrator making the change (its author)"),
    ],
    authority: Annotated[
        str | None, typer.Option(help="Officer: department code, e.g. 320500-housing_fund")
    ] = None,
    duty: Annotated[str | None, typer.Option(help="Officer: reviewer or approver")] = None,
    city: Annotated[
        str | None,
        typer.Option(help="City code (clerk, hotline, dispatcher, grid_inspector, hospital)"),
    ] = None,
    jurisdiction: Annotated[
        str | None, typer.Option(help="Supervisor: jurisdiction code, e.g. 320000")
    ] = None,
) -> None:
    """Give a staff account a role and the post it needs, with a reason. An account event
    in the audit chain by --admin; the account's sessions and API tokens end."""
    try:
        with cli_node(ctx).transaction() as session:
            author = _account(session, admin, "管理员账户")
            account = _account(session, username)
            before = _post(account)
            identity.change_role(
                session,
                author,
                account.id,
                role,
                reason=reason,
                duty=duty,
                authority_id=_authority_id(session, authority),
                city_code=city,
                jurisdiction_code=jurisdiction,
            )
            after = _post(account)
    except DomainError as exc:
        raise _refused(exc) from exc
    if after == before:
        typer.echo(f"{username} 的角色和岗位没有变化（{_label(after[0])}），未记录变更")
        return
    typer.echo(
        f"已变更 {username} 的角色：{_label(before[0])} → {_label(after[0])}（经办：{admin}）；"
        "变更已记入审计链，其登录会话和 API 访问令牌已全部作废"
    )


@app.command("show")
def show(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The account's username")],
) -> None:
    """An account's role, post and changes of role."""
    try:
        with cli_node(ctx).transaction() as session:
            account = _account(session, username)
            typer.echo(f"{account.username}  {account.display_name}  {_label(account.role)}")
            typer.echo(
                f"  职责 {account.duty or '—'}  城市 {account.city_code or '—'}  "
                f"辖区 {account.jurisdiction_code or '—'}  "
                f"{'正常' if account.is_active else '已停用'}"
            )
            for e in identity.role_events(session, account):
                typer.echo(
                    f"  {local_dt(e.at)} {_label(e.evidence['from']['role'])} → "
                    f"{_label(e.evidence['to']['role'])}  经办 {e.actor_name}  原因 {e.reason}"
                )
    except DomainError as exc:
        typer.echo(exc.detail, err=True)
        raise typer.Exit(1) from exc
