"""`tongban licence …` and `tongban trust …` commands."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from tongban.kernel.node import cli_node, cli_settings
from tongban.licences import federation, offline
from tongban.licences.keybinding import normalise_nonce
from tongban.licences.verification import binding_policy

app = typer.Typer(help="E-licences: issue, verify (offline too)", no_args_is_help=True)
trust_app = typer.Typer(
    help="The federation trust list and status lists cache", no_args_is_help=True
)

#: Exit codes of `tongban licence verify`.
EXIT_VALID, EXIT_INVALID, EXIT_NO_CACHE = 0, 1, 2
#: Exit code of `tongban trust sync` when some status lists failed (the rest is cached).
EXIT_PARTIAL = 3


def _cache_dir(ctx: typer.Context, cache: Path | None) -> Path:
    return cache or cli_settings(ctx).trust_cache


@trust_app.command("sync")
def sync(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option(help="Base URL of a tongban node (default TONGBAN_PUBLIC_URL)")
    ] = None,
    cache: Annotated[
        Path | None, typer.Option(help="Cache directory (default TONGBAN_TRUST_CACHE)")
    ] = None,
    root_jwk: Annotated[
        Path | None,
        typer.Option(help="Pin these federation root keys (JWK or JWKS file)"),
    ] = None,
) -> None:
    """Download the signed trust list (following the trust-root redirect) and every
    status list the node holds (its own and those received from other nodes) for
    offline verification. Exit 0 synced, 1 failed, 3 some status lists failed."""
    base = url or cli_settings(ctx).public_url
    directory = _cache_dir(ctx, cache)
    try:
        report = offline.sync(base, directory, root_jwk_file=root_jwk)
    except offline.SyncFailed as e:
        typer.echo(f"同步失败：{e}", err=True)
        raise typer.Exit(1) from None
    if report.pinned_now and root_jwk is None:
        typer.echo(
            "首次同步：已记录联盟根公钥 " + "、".join(report.root_kids) + "（首次使用即信任），"
            "请与联盟公布的根公钥指纹核对；以后只接受由它签名的信任列表。",
            err=True,
        )
    typer.echo(
        f"已同步信任列表：{report.issuers} 个签发方、{report.keys} 把密钥；"
        f"状态列表 {report.lists} 个；缓存目录 {report.cache}"
    )
    typer.echo(f"  信任列表来自 {report.trust_source}")
    for lst in report.cached:
        typer.echo(f"  状态列表 {lst.uri}：来自 {lst.source}，{offline.list_age(lst)}")
    for failure in report.failures:
        typer.echo(f"警告：{failure}（保留上次缓存的副本，如有）", err=True)
    if report.failures:
        raise typer.Exit(EXIT_PARTIAL)


def _read_input(source: str) -> str:
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    return "".join(text.split())


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@app.command("verify")
def verify(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="File with the presentation, or - for stdin")],
    cache: Annotated[
        Path | None, typer.Option(help="Cache directory (default TONGBAN_TRUST_CACHE)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
    require_binding: Annotated[
        bool | None,
        typer.Option(
            "--require-binding/--allow-unbound",
            help="Require a KB-JWT by the holder's device key (default "
            "TONGBAN_LICENCE_REQUIRE_BINDING; always required when "
            "TONGBAN_LICENCE_ALLOW_UNBOUND=false)",
        ),
    ] = None,
    nonce: Annotated[
        str | None,
        typer.Option(help="The challenge you gave the holder (without it: time-window mode)"),
    ] = None,
    aud: Annotated[
        str | None, typer.Option(help="Your verifier id, accepted as the KB-JWT's aud")
    ] = None,
) -> None:
    """Verify a licence offline, from the cache of `tongban trust sync` only (no network).
    Exit code 0 valid, 1 invalid, 2 no cache."""
    directory = _cache_dir(ctx, cache)
    try:
        compact = _read_input(source)
    except OSError as e:
        typer.echo(f"无法读取 {source}：{e}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    try:
        loaded = offline.load(directory)
    except offline.CacheMissing as e:
        typer.echo(
            f"没有可用的信任列表缓存（{directory}）：请先运行 tongban trust sync（{e}）", err=True
        )
        raise typer.Exit(EXIT_NO_CACHE) from None
    policy = binding_policy(
        require=require_binding,
        nonce=normalise_nonce(nonce),
        audience=aud,
        settings=cli_settings(ctx),
    )
    result = offline.verify_offline(compact, loaded, binding=policy)
    stale = offline.staleness(loaded)
    if as_json:
        out = {k: _jsonable(v) for k, v in result.as_dict().items()}
        out["cache"] = {
            "synced_at": loaded.synced_at.isoformat(),
            "source": loaded.url,
            "staleness": stale,
            "warnings": loaded.warnings,
        }
        typer.echo(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        if result.valid:
            typer.echo(f"VALID 验证通过：{result.type_name or result.vct}")
            typer.echo(f"  {result.binding_text}")
        else:
            typer.echo(f"INVALID 验证未通过：{result.reason_text}（{result.reason}）")
            if result.detail:
                typer.echo(f"  详情：{result.detail}")
        if result.licence_id:
            typer.echo(f"  证照标识：{result.licence_id}")
        if result.issuer:
            typer.echo(f"  签发方：{result.issuer}")
        for name, value in result.claims.items():
            typer.echo(f"  {result.labels.get(name, name)}：{value}")
    typer.echo(stale, err=as_json)
    for warning in loaded.warnings:
        typer.echo(f"警告：{warning}", err=True)
    raise typer.Exit(EXIT_VALID if result.valid else EXIT_INVALID)


@app.command("publish-keys")
def publish_keys(ctx: typer.Context) -> None:
    """Send this node's licence keys and status lists to every other node of the
    federation (a node that joined later); the worker delivers them."""
    node = cli_node(ctx)
    if not federation.federated(node.settings):
        typer.echo("本节点未加入联盟（未设置 TONGBAN_FEDERATION_FILE），无需发布。")
        return
    with node.transaction() as session:
        n_keys, n_lists = federation.publish_all(session)
    typer.echo(f"已排队发送：密钥 {n_keys} 条消息，状态列表 {n_lists} 条消息（由 worker 投递）。")
