"""The worker delivers the outbox and marks deadlines; the CLI builds the demo federation."""

from __future__ import annotations

import json
import os
from datetime import date
from functools import partial

import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from nodes import run_cli
from tongban.cases import service
from tongban.cases.models import Case
from tongban.exchange import contracts
from tongban.exchange import service as exchange_service
from tongban.exchange.contracts import any_node
from tongban.exchange.models import OutboxMessage
from tongban.exchange.service import MAX_ATTEMPTS, dispatch_pending
from tongban.identity.domain import Role
from tongban.worker import run_once

from builders import make_case, make_officer


def test_worker_pass_delivers_and_flags(session, kernel_node):
    officer = make_officer(session, "320500-housing_fund")
    case = make_case(session, dispatch=False)
    session.commit()
    assert run_once(kernel_node) >= 1
    session.expire_all()
    case = session.get(Case, case.id)
    assert case.handoff == "delivered"
    service.act(session, officer, case.id, "accept")
    case.deadline = date(2020, 1, 6)  # long past
    session.commit()
    run_once(kernel_node)
    session.expire_all()
    assert session.get(Case, case.id).deadline_flag == "overdue"


@pytest.fixture
def flaky_type():
    """A message type whose handler fails as a transient fault would (a crash, not a
    refusal): delivery is retried with back-off until the message is dead."""
    name = "test.flaky"

    class Empty(BaseModel):
        model_config = ConfigDict(extra="forbid")

    @exchange_service.handler(name, schema=Empty, authorise=any_node)
    def _boom(session, payload, msg):  # type: ignore[no-untyped-def]
        raise RuntimeError("transient fault")

    yield name
    exchange_service._handlers.pop(name, None)
    contracts._contracts.pop(name, None)


def test_failed_delivery_backs_off_then_goes_dead(session, factory, flaky_type):
    msg = OutboxMessage(
        type=flaky_type, source_jurisdiction="310000", target_jurisdiction="320000", payload={}
    )
    session.add(msg)
    session.commit()
    dispatch_pending(factory)
    session.expire_all()
    msg = session.get(OutboxMessage, msg.id)
    assert msg.status == "pending" and msg.attempts == 1 and "transient fault" in msg.last_error
    assert msg.next_attempt_at > msg.created_at
    for _ in range(MAX_ATTEMPTS):
        msg.next_attempt_at = msg.created_at
        session.commit()
        dispatch_pending(factory)
        session.expire_all()
        msg = session.get(OutboxMessage, msg.id)
    assert msg.status == "dead"


def test_a_message_of_an_unknown_type_is_dead_at_once_with_its_reason(session, factory):
    msg = OutboxMessage(
        type="no.such.type", source_jurisdiction="310000", target_jurisdiction="320000", payload={}
    )
    session.add(msg)
    session.commit()
    dispatch_pending(factory)
    session.expire_all()
    msg = session.get(OutboxMessage, msg.id)
    assert msg.status == "dead" and msg.attempts == 1
    assert "no.such.type" in msg.last_error


def test_unserved_jurisdiction_is_not_applied_locally(session, factory):
    case = make_case(session, dispatch=False)
    session.commit()
    dispatch_pending(factory, served="310000,340000")
    session.expire_all()
    assert session.get(Case, case.id).handoff == "pending"
    pending = session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")).all()
    assert any("no node serves" in (m.last_error or "") for m in pending)


def test_cli_upgrade_demo_and_accounts(tmp_path):
    env = {**os.environ, "TONGBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}

    def cli(*args: str) -> str:
        out = run_cli(env, tmp_path, *args, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout

    cli("db", "upgrade")
    assert "demo federation ready" in cli("demo")
    assert "(0 account(s) added)" in cli("demo")  # idempotent
    accounts = json.loads(cli("demo", "accounts", "--json"))
    roles = {a["role"] for a in accounts}
    # One demo account (at least) for every role the platform knows.
    assert roles == {r.value for r in Role}
    for a in accounts:
        assert {
            "username",
            "password",
            "role",
            "jurisdiction_code",
            "city_code",
            "authority",
        } <= a.keys()
    clerks = [a for a in accounts if a["role"] == "clerk"]
    assert len(clerks) == 41
    officer = next(a for a in accounts if a["username"] == "320500-public_security-approver")
    assert officer["authority"] == "320500-public_security" and officer["city_code"] == "320500"


def test_cli_calendar_override_changes_deadlines(tmp_path):
    from datetime import date as d

    from tongban.calendar import service as calendar
    from tongban.db import make_engine, session_factory

    url = f"sqlite:///{tmp_path / 'cal.db'}"
    env = {**os.environ, "TONGBAN_DATABASE_URL": url}

    cli = partial(run_cli, env, tmp_path)

    assert cli("db", "upgrade").returncode == 0
    assert cli("calendar", "check", "2026").returncode == 0
    assert cli("calendar", "check", "2099").returncode == 1
    assert cli("calendar", "override", "2099-01-01", "--holiday", "--note", "元旦").returncode == 0
    assert cli("calendar", "override", "not-a-date").returncode != 0
    engine = make_engine(url)
    with session_factory(engine)() as s:
        assert calendar.add_working_days(s, d(2098, 12, 31), 1) == d(2099, 1, 2)
    engine.dispose()
