"""`tongban card …`: the reference device (enrol a device key for an account through the
API, print the current code). `tongban gate …` is in gate_cli.py."""

from __future__ import annotations

import getpass
import time
from pathlib import Path
from typing import Annotated

import typer

from tongban.card.device import Device, DeviceError

app = typer.Typer(help="Resident service card: the reference device", no_args_is_help=True)

DEVICE_FILE = Path("var/card-device.json")


@app.command("enrol")
def enrol(
    url: Annotated[str, typer.Option(help="Base URL of the holder's tongban node")],
    username: Annotated[str, typer.Option(help="The holder's account")],
    device: Annotated[Path, typer.Option(help="Device file (made if missing)")] = DEVICE_FILE,
    alg: Annotated[str, typer.Option(help="Device key: ES256 (P-256) or EdDSA")] = "ES256",
    password: Annotated[
        str | None,
        typer.Option(help="Password (asked for when not given)", envvar="TONGBAN_CARD_PASSWORD"),
    ] = None,
) -> None:
    """Register this device's key for the account's card and keep the 24-hour credential
    (run it again to renew; a new device file supersedes the account's other devices)."""
    try:
        dev = Device.load(device) if device.exists() else Device.generate(alg)
        body = dev.enrol(url, username=username, password=password or getpass.getpass("密码："))
        dev.save(device)
    except DeviceError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from e
    typer.echo(
        f"已登记：卡号 {body['card_number']}，{body['city_name']}，{body['age_band']}，"
        f"凭证有效至 {body['expires_at']}（设备文件 {device}）"
    )


@app.command("code")
def code(
    device: Annotated[
        Path, typer.Option(help="Device file made by `tongban card enrol`")
    ] = DEVICE_FILE,
    qr: Annotated[bool, typer.Option("--qr", help="Also draw the QR code in the terminal")] = False,
    at: Annotated[int | None, typer.Option(help="Unix time of the code (default now)")] = None,
) -> None:
    """Print the current dynamic code (the QR text, TBC1:…). Exit 1 without a usable
    credential."""
    try:
        dev = Device.load(device)
        now = int(time.time()) if at is None else at
        cred = dev.credential_info()
        if cred.exp <= now:
            raise DeviceError("凭证已过期，请重新运行 tongban card enrol")
        text = dev.qr_text(now)
    except DeviceError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from e
    typer.echo(text)
    if qr:
        import segno

        segno.make(text, error="m", mode="alphanumeric").terminal(compact=True)


@app.command("grant-venue")
def grant_venue(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="A venue staff account (场馆工作人员)")],
    venue: Annotated[str, typer.Option(help="The venue's code, e.g. 330100-museum")],
) -> None:
    """Let a venue staff account scan codes for a venue of this node (the operator's act,
    from the shell; the account gets the role with `tongban account set-role`)."""
    from sqlalchemy import select

    from tongban.card import scanning
    from tongban.errors import DomainError
    from tongban.identity.models import Account
    from tongban.kernel.node import cli_node

    try:
        with cli_node(ctx).transaction() as session:
            account = session.scalar(select(Account).where(Account.username == username))
            if account is None:
                typer.echo(f"账号 {username} 不存在", err=True)
                raise typer.Exit(1)
            scanning.grant(session, None, account, venue)
    except DomainError as e:
        typer.echo(e.detail, err=True)
        raise typer.Exit(1) from e
    typer.echo(f"已指定 {username} 为 {venue} 的场馆工作人员")
