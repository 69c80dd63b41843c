"""`tongban calendar override` and `tongban calendar remove-override` as an operator runs
them: each change moves the deadlines computed afterwards and is an entry of the audit
chain with the operator, the day, before and after, and the reason."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tongban.audit import service as audit
from tongban.calendar import service as calendar
from tongban.cli import app
from tongban.kernel.node import Node

DAY = "2031-10-08"  # a Wednesday of the National Day week


def _cli(node: Node, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["calendar", *args], obj=node)
    return result.exit_code, result.stdout, result.stderr


def _changes(session: Session) -> list[tuple[str, dict[str, Any]]]:
    session.expire_all()
    return [(e.actor, json.loads(e.body)) for e in audit.changes(session, f"calendar:{DAY}")]


def test_override_then_remove_override_are_audited(session: Session, kernel_node: Node) -> None:
    start = date(2031, 10, 6)
    official = calendar.add_working_days(session, start, 3)

    code, _, err = _cli(
        kernel_node, "override", DAY, "--holiday", "--note", "国务院通知", "--by", "张运维"
    )
    assert code == 0, err
    session.expire_all()
    assert calendar.add_working_days(session, start, 3) > official
    [(actor, body)] = _changes(session)
    assert actor == "operator:张运维" and body["what"] == "calendar.override.set"
    assert body["after"] == {"is_workday": False, "note": "国务院通知"}
    assert body["reason"] == "国务院通知"  # the note, when no --reason is given

    code, out, err = _cli(
        kernel_node, "remove-override", DAY, "--reason", "通知已撤回", "--by", "李运维"
    )
    assert code == 0, err
    assert f"已撤销 {DAY} 的人工调整" in out and "通知已撤回" in out
    session.expire_all()
    assert calendar.add_working_days(session, start, 3) == official
    actor, body = _changes(session)[-1]
    assert actor == "operator:李运维" and body["what"] == "calendar.override.removed"
    assert body["before"] == {"is_workday": False, "note": "国务院通知"}
    assert body["after"] is None and body["reason"] == "通知已撤回" and body["day"] == DAY
    assert audit.verify(session).ok


def test_remove_override_refusals(session: Session, kernel_node: Node) -> None:
    # No override of that day: exit 1, nothing recorded.
    code, out, err = _cli(kernel_node, "remove-override", DAY, "--reason", "撤销")
    assert code == 1 and "没有人工调整" in err and out == ""
    assert _changes(session) == []
    # A reason is required, a day must be a date: usage errors.
    assert _cli(kernel_node, "remove-override", DAY)[0] == 2
    code, _, err = _cli(kernel_node, "remove-override", DAY, "--reason", "  ")
    assert code == 2 and "请填写撤销原因" in err
    code, _, err = _cli(kernel_node, "remove-override", "2031-13-01", "--reason", "x")
    assert code == 2 and "日期格式应为 YYYY-MM-DD" in err


def test_override_takes_a_reason_of_its_own(session: Session, kernel_node: Node) -> None:
    code, _, err = _cli(
        kernel_node, "override", DAY, "--workday", "--note", "调休", "--reason", "地方安排"
    )
    assert code == 0, err
    actor, body = _changes(session)[-1]
    assert body["after"]["is_workday"] is True and body["reason"] == "地方安排"
    assert actor.startswith("operator:")
