"""`tongban account set-role` and `tongban account show` as an operator runs them: the
same change as the page's and the API's, in the name of an administrator's account, with
exit codes 0 (done or nothing to change), 1 (refused, why on stderr) and 2 (usage)."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tongban.audit import service as audit
from tongban.cli import app
from tongban.identity import service as identity
from tongban.identity.models import Account
from tongban.kernel.node import Node

from builders import make_admin, make_clerk, make_officer, make_resident


def _cli(node: Node, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["account", *args], obj=node)
    return result.exit_code, result.stdout, result.stderr


def _reload(session: Session, account: Account) -> Account:
    session.expire_all()
    found = session.get(Account, account.id)
    assert found is not None
    return found


def test_set_role_changes_the_role_and_records_it(session: Session, kernel_node: Node) -> None:
    admin = make_admin(session)
    clerk = make_clerk(session, "320500")
    session.commit()
    code, out, err = _cli(
        kernel_node,
        "set-role",
        clerk.username,
        "officer",
        "--authority",
        "320500-housing_fund",
        "--duty",
        "approver",
        "--reason",
        "调入公积金中心",
        "--admin",
        admin.username,
    )
    assert code == 0, err
    assert f"已变更 {clerk.username} 的角色：窗口受理员 → 审核/审批人员" in out
    clerk = _reload(session, clerk)
    assert (clerk.role, clerk.duty, clerk.city_code) == ("officer", "approver", "320500")
    [event] = identity.role_events(session, clerk)
    assert event.reason == "调入公积金中心" and event.actor_id == admin.id
    entries = [
        json.loads(e.body)
        for e in audit.about(session, f"account:{clerk.id}")
        if e.kind == "account.event"
    ]
    assert entries[-1]["action"] == "role_changed"
    assert entries[-1]["evidence"]["to"]["role"] == "officer"

    # The same again: nothing to change, exit 0, no second event.
    code, out, _ = _cli(
        kernel_node,
        "set-role",
        clerk.username,
        "officer",
        "--reason",
        "再次确认",
        "--admin",
        admin.username,
    )
    assert code == 0 and "没有变化" in out
    assert len(identity.role_events(session, clerk)) == 1

    code, out, _ = _cli(kernel_node, "show", clerk.username)
    assert code == 0 and "审核/审批人员" in out
    assert "窗口受理员 → 审核/审批人员" in out and "调入公积金中心" in out


def test_set_role_refusals_exit_1_with_the_reason(session: Session, kernel_node: Node) -> None:
    admin = make_admin(session)
    officer = make_officer(session, "320500-housing_fund")
    resident = make_resident(session)
    session.commit()
    base = ["--reason", "调岗", "--admin", admin.username]
    refusals = [
        (["set-role", officer.username, "clerk", "--city", "999900", *base], "城市不存在"),
        (
            ["set-role", officer.username, "officer", "--authority", "nope", *base],
            "部门 nope 不存在",
        ),
        (["set-role", officer.username, "wizard", *base], "不是有效的角色"),
        (["set-role", resident.username, "officer", *base], "只能变更工作人员的角色"),
        (["set-role", admin.username, "clerk", *base], "不能变更自己的角色"),
        (["set-role", "nobody", "clerk", *base], "账户 nobody 不存在"),
        (
            ["set-role", officer.username, "clerk", "--reason", " ", "--admin", admin.username],
            "请填写变更原因",
        ),
        (
            ["set-role", officer.username, "clerk", "--reason", "x", "--admin", officer.username],
            "只有平台管理员可以变更账户角色",
        ),
        (
            ["set-role", officer.username, "clerk", "--reason", "x", "--admin", "ghost"],
            "管理员账户 ghost 不存在",
        ),
    ]
    for args, message in refusals:
        code, out, err = _cli(kernel_node, *args)
        assert code == 1, (args, out, err)
        assert message in err and "未变更" in err, (args, err)
    # The message names the option to fix.
    code, _, err = _cli(
        kernel_node, "set-role", officer.username, "supervisor", "--jurisdiction", "990000", *base
    )
    assert code == 1 and "--jurisdiction：辖区不存在" in err
    assert _reload(session, officer).role == "officer"
    assert identity.role_events(session, officer) == []
    # A missing --reason or --admin is a usage error.
    assert (
        _cli(kernel_node, "set-role", officer.username, "clerk", "--admin", admin.username)[0] == 2
    )
    assert _cli(kernel_node, "set-role", officer.username, "clerk", "--reason", "x")[0] == 2
    assert _cli(kernel_node, "show", "nobody")[0] == 1
