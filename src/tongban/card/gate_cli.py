"""`tongban gate …`: a gate or venue device — set it up, have it registered, sync, verify a
code offline, or run it as a local gate process (`serve`). Nothing here opens the node's
database: a gate talks to its node over HTTP, and verifies with no network at all."""

from __future__ import annotations

import getpass
import json
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import BaseModel, Field

from tongban.card import gate as gates
from tongban.card.benefits import BadRules
from tongban.card.verifier import StalePolicy

app = typer.Typer(
    help="Gates and venues: offline verification of dynamic codes", no_args_is_help=True
)

STATE = Path("var/gate")
EXIT_ADMITTED, EXIT_REFUSED, EXIT_NO_STATE = 0, 1, 2

StateOpt = Annotated[Path, typer.Option(help="The gate's state directory")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


@app.command("init")
def init(
    gate_id: Annotated[str, typer.Option(help="This gate's id, e.g. hz-museum-01")],
    venue: Annotated[str, typer.Option(help="Venue code (GET /api/v1/card/venues)")],
    url: Annotated[str, typer.Option(help="Base URL of the node this gate syncs with")],
    state: StateOpt = STATE,
    stale_policy: Annotated[
        str, typer.Option(help="When not synced for --max-stale: refuse or admit_and_flag")
    ] = "refuse",
    max_stale: Annotated[int, typer.Option(help="Seconds without a sync allowed")] = 24 * 3600,
) -> None:
    """Set up a gate: its key is made here; register its public key with the node."""
    if stale_policy not in ("refuse", "admit_and_flag"):
        raise _fail("--stale-policy 只能是 refuse 或 admit_and_flag")
    policy: StalePolicy = "refuse" if stale_policy == "refuse" else "admit_and_flag"
    try:
        config = gates.init(
            state,
            gate_id,
            venue,
            url,
            stale_policy=policy,
            max_stale=max_stale,
        )
    except (gates.GateError, BadRules) as e:
        raise _fail(str(e)) from e
    typer.echo(
        json.dumps(
            {"gate_id": gate_id, "venue_code": venue, "public_jwk": config.public_jwk()},
            ensure_ascii=False,
        )
    )


@app.command("register")
def register(
    username: Annotated[str, typer.Option(help="An administrator of the node")],
    state: StateOpt = STATE,
    password: Annotated[
        str | None,
        typer.Option(help="Password (asked when not given)", envvar="TONGBAN_GATE_ADMIN_PASSWORD"),
    ] = None,
) -> None:
    """Register this gate's public key with its node (an administrator's account)."""
    try:
        config = gates.GateConfig.load(state)
    except gates.GateError as e:
        raise _fail(str(e), EXIT_NO_STATE) from e
    secret = password or getpass.getpass("管理员密码：")
    try:
        with httpx.Client(base_url=config.url, timeout=30) as http:
            r = http.post("/api/v1/auth/token", data={"username": username, "password": secret})
            if r.status_code != 200:
                raise _fail(f"登录失败：{r.text}")
            token = r.json()["access_token"]
            r = http.post(
                "/api/v1/card/gates",
                json={
                    "gate_id": config.gate_id,
                    "venue_code": config.venue_code,
                    "public_jwk": config.public_jwk(),
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            if r.status_code != 201:
                raise _fail(f"登记失败：{r.text}")
    except httpx.HTTPError as e:
        raise _fail(f"无法连接 {config.url}：{e}") from e
    typer.echo(f"闸机 {config.gate_id} 已登记到 {config.url}（{config.venue_code}）")


@app.command("sync")
def sync(
    state: StateOpt = STATE,
    root_jwk: Annotated[
        Path | None,
        typer.Option(help="Pin these federation root keys (JWKS) instead of the node's"),
    ] = None,
) -> None:
    """Fetch and verify the trust list and the revocation lists, upload the uses, learn the
    codes the operator's other gates admitted. Exit 0 synced, 1 failed, 3 partly."""
    try:
        report = gates.sync(state, root_jwk_file=root_jwk)
    except gates.GateError as e:
        raise _fail(str(e)) from e
    lists = "，".join(f"{k}:{v}" for k, v in sorted(report.lists.items())) or "无"
    typer.echo(
        f"已同步：{report.issuers} 个签发方，{report.keys} 个密钥；吊销名单 {lists}；"
        f"上传 {report.uploaded} 条（重复 {report.duplicates}），获知 {report.learnt} 个已用码"
    )
    if report.deltas:
        typer.echo(f"  增量同步：{'，'.join(report.deltas)}；下载 {report.list_bytes} 字节")
    for refused in report.refused_deltas:
        typer.echo(f"  注意：{refused}", err=True)
    for failure in report.failures:
        typer.echo(f"  失败：{failure}", err=True)
    if report.failures:
        raise typer.Exit(3)


def _read_code(code: str | None) -> str:
    return (code if code not in (None, "-") else sys.stdin.read()).strip()


@app.command("verify")
def verify(
    code: Annotated[
        str | None, typer.Argument(help="The scanned QR text (TBC1:…); - or none: stdin")
    ] = None,
    state: StateOpt = STATE,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON")] = False,
    at: Annotated[int | None, typer.Option(help="Unix time to verify at (default now)")] = None,
) -> None:
    """Verify one code offline with the last sync; the use is kept for upload. Exit 0
    admitted, 1 refused, 2 the gate has no synced state."""
    try:
        gate = gates.load(state)
    except gates.GateError as e:
        raise _fail(str(e), EXIT_NO_STATE) from e
    try:
        started = time.perf_counter()
        verdict = gate.check(_read_code(code), at)
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        gate.close()
    if as_json:
        typer.echo(json.dumps(gates.verdict_json(verdict, round(elapsed, 2)), ensure_ascii=False))
    else:
        typer.echo(verdict.message)
        if verdict.decision is not None:
            typer.echo(f"  {verdict.decision.why}（规则 {verdict.decision.rule}）")
        if verdict.holder is not None:
            typer.echo(f"  持卡人：{verdict.holder.describe()}（{verdict.holder.jurisdiction}）")
    raise typer.Exit(EXIT_ADMITTED if verdict.admitted else EXIT_REFUSED)


class VerifyIn(BaseModel):
    """What the turnstile or the scan page posts: the scanned QR text."""

    code: str = Field(max_length=1000)


def make_app(state: Path, sync_interval: float = 0.0) -> Any:
    """The local gate process: POST /verify {"code"}, GET /status; syncs every
    `sync_interval` seconds in the background (0: never)."""
    from fastapi import FastAPI

    holder: dict[str, gates.Gate] = {"gate": gates.load(state)}
    lock = threading.Lock()
    stop = threading.Event()

    api = FastAPI(title="tongban gate", docs_url=None, redoc_url=None, openapi_url=None)

    @api.post("/verify")
    def verify_code(body: VerifyIn) -> dict[str, Any]:
        started = time.perf_counter()
        with lock:
            verdict = holder["gate"].check(body.code)
        return gates.verdict_json(verdict, round((time.perf_counter() - started) * 1000, 3))

    @api.get("/status")
    def status() -> dict[str, Any]:
        return holder["gate"].status()

    def resync() -> None:
        while not stop.wait(sync_interval):
            try:
                gates.sync(state)
                fresh = gates.load(state)
            except gates.GateError:
                continue  # keep verifying with the last good state; /status shows its age
            with lock:
                old, holder["gate"] = holder["gate"], fresh
            old.close()

    if sync_interval > 0:
        threading.Thread(target=resync, daemon=True, name="gate-sync").start()
    api.state.stop = stop
    return api


@app.command("serve")
def serve(
    state: StateOpt = STATE,
    host: str = "127.0.0.1",
    port: int = 8780,
    sync_interval: Annotated[float, typer.Option(help="Seconds between syncs (0: never)")] = 300.0,
) -> None:
    """Run the gate as a local process for the turnstile or the scan page."""
    import uvicorn

    try:
        application = make_app(state, sync_interval)
    except gates.GateError as e:
        raise _fail(str(e), EXIT_NO_STATE) from e
    uvicorn.run(application, host=host, port=port, log_level="info")
