"""Everything that changes is history (issue 11): each change made in place — a key
rotated or withdrawn, a calendar day overridden or its override removed, the matter
catalogue or the medical reference reloaded, a dead letter replayed, a staff account's
role changed, a rectification closed — is an entry of the audit chain, with who, what,
before and after; and the chain still verifies."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from tests.builders import (
    make_admin,
    make_case,
    make_officer,
    make_resident,
    medical_reference,
)

from tongban.audit import domain
from tongban.audit import service as audit
from tongban.errors import ValidationFailed


def body(entry: domain.Entry) -> dict[str, Any]:
    return json.loads(entry.body)


def last_change(session: Session, subject: str) -> tuple[domain.Entry, dict[str, Any]]:
    found = audit.changes(session, subject)
    assert found, f"no change entry about {subject}"
    return found[-1], body(found[-1])


def test_key_rotation_and_withdrawal_are_in_the_chain(session):
    from tongban.keys import service as keys

    first = keys.rotate(session, "audit", "node-t", actor="account:ops")
    entry, b = last_change(session, "keys:audit:node-t")
    assert entry.kind == "change" and entry.actor == "account:ops"
    assert b["what"] == "key.rotated" and b["before"] is None
    assert b["after"]["kid"] == first.kid
    second = keys.rotate(session, "audit", "node-t", reason="定期轮换")
    _, b = last_change(session, "keys:audit:node-t")
    assert b["before"]["kid"] == first.kid and b["after"]["kid"] == second.kid
    assert b["before"]["retired_at"] is None and b["reason"] == "定期轮换"

    keys.withdraw(session, second.kid, actor="account:ops", reason="泄露")
    entry, b = last_change(session, f"key:{second.kid}")
    assert b["what"] == "key.withdrawn" and b["reason"] == "泄露"
    assert b["before"]["not_after"] is None and b["after"]["not_after"] is not None
    assert audit.verify(session).ok


def test_an_imported_key_withdrawn_by_its_owner_is_in_the_chain(session):
    from tongban.crypto.signing import generate
    from tongban.db import utcnow
    from tongban.keys import service as keys

    jwk = generate().public().jwk()
    row = keys.import_public(session, "node", "peer-t", jwk)
    assert audit.changes(session, f"key:{row.kid}") == []  # a first import is no change
    keys.import_public(session, "node", "peer-t", jwk)  # the same again: still none
    assert audit.changes(session, f"key:{row.kid}") == []
    keys.import_public(session, "node", "peer-t", jwk, not_after=utcnow())
    _, b = last_change(session, f"key:{row.kid}")
    assert b["what"] == "key.imported.changed" and b["after"]["not_after"] is not None


def test_calendar_override_set_changed_and_removed_are_in_the_chain(session):
    from tongban.calendar import service as calendar

    day = date(2031, 10, 8)
    before_deadline = calendar.add_working_days(session, date(2031, 10, 6), 3)
    calendar.set_override(session, day, False, "国务院通知", actor="account:ops")
    entry, b = last_change(session, "calendar:2031-10-08")
    assert entry.actor == "account:ops" and b["what"] == "calendar.override.set"
    assert b["before"] is None and b["after"] == {"is_workday": False, "note": "国务院通知"}
    assert b["day"] == "2031-10-08" and b["reason"] == "国务院通知"
    assert calendar.add_working_days(session, date(2031, 10, 6), 3) != before_deadline

    n = len(audit.changes(session, "calendar:2031-10-08"))
    calendar.set_override(session, day, False, "国务院通知")  # no change: no entry
    assert len(audit.changes(session, "calendar:2031-10-08")) == n
    calendar.set_override(session, day, True, "调休上班", reason="更正")
    _, b = last_change(session, "calendar:2031-10-08")
    assert b["before"]["is_workday"] is False and b["after"]["is_workday"] is True
    assert b["reason"] == "更正"

    assert calendar.remove_override(session, day, actor="account:ops", reason="撤销")
    _, b = last_change(session, "calendar:2031-10-08")
    assert b["what"] == "calendar.override.removed" and b["after"] is None
    assert not calendar.remove_override(session, day)  # nothing left: no entry
    assert len(audit.changes(session, "calendar:2031-10-08")) == n + 2
    assert audit.verify(session).ok


def test_catalogue_reload_records_what_changed(session, tmp_path):
    from tongban.catalog import service as catalog
    from tongban.catalog.domain import read_catalogue

    items = read_catalogue(None)
    catalog.load_catalogue(session)  # as shipped: nothing changes, no entry
    n = len(audit.changes(session, "catalogue:matters"))
    changed = [dict(i) for i in items]
    code = changed[0]["code"]
    changed[0]["time_limit_days"] = int(changed[0]["time_limit_days"]) + 7
    changed[0]["description"] = "新的说明"
    dropped = changed.pop()["code"]
    path = tmp_path / "matters.json"
    path.write_text(json.dumps(changed, ensure_ascii=False), encoding="utf-8")
    catalog.load_catalogue(session, path, actor="account:ops")
    entry, b = last_change(session, "catalogue:matters")
    assert len(audit.changes(session, "catalogue:matters")) == n + 1
    assert entry.actor == "account:ops" and b["what"] == "catalogue.loaded"
    diff = b["changed"][code]
    assert diff["time_limit_days"]["after"] == diff["time_limit_days"]["before"] + 7
    assert set(diff["description"]["after"]) == {"digest"}  # long text pinned, not copied
    assert b["changed"][dropped] == {"active": {"before": True, "after": False}}
    assert b["added"] == []


def test_medical_reference_additions_are_in_the_chain(session):
    from tongban.medical import service as medical
    from tongban.medical.models import PolicyRule

    medical_reference(session)
    rule = session.scalars(select(PolicyRule).limit(1)).one()
    key = (rule.city_code, rule.scheme, rule.level)
    session.execute(delete(PolicyRule).where(PolicyRule.id == rule.id))
    n = len(audit.changes(session, "medical:reference"))
    assert medical.load_reference(session)[0] == 1
    _, b = last_change(session, "medical:reference")
    assert len(audit.changes(session, "medical:reference")) == n + 1
    assert [(p["city"], p["scheme"], p["level"]) for p in b["policies_added"]] == [key]


def test_dead_letter_replay_is_in_the_chain(session):
    from tongban.db import utcnow
    from tongban.exchange import service as exchange
    from tongban.exchange.models import OutboxMessage

    m = OutboxMessage(
        type="case.status",
        source_jurisdiction="320000",
        target_jurisdiction="310000",
        payload={},
        status="dead",
        attempts=9,
        dead_at=utcnow(),
    )
    session.add(m)
    session.flush()
    exchange.replay(session, [m.id], "张运维")
    entry, b = last_change(session, f"message:{m.id}")
    assert entry.actor == "operator:张运维" and b["what"] == "message.replayed"
    assert b["before"]["status"] == "dead" and b["before"]["attempts"] == 9
    assert b["after"] == {"status": "pending", "replays": 1}
    assert audit.verify(session).ok


def test_role_change_is_an_account_event_in_the_chain(session):
    from tongban.identity import service as identity
    from tongban.identity.models import AccountEvent

    admin = make_admin(session)
    officer = make_officer(session, "320500-housing_fund")
    with pytest.raises(ValidationFailed):
        identity.change_role(session, admin, officer.id, "clerk", reason="")
    identity.change_role(session, admin, officer.id, "clerk", reason="调岗", city_code="320500")
    assert officer.role == "clerk" and officer.authority_id is None
    event = session.scalars(
        select(AccountEvent).where(
            AccountEvent.account_id == officer.id, AccountEvent.action == "role_changed"
        )
    ).one()
    assert event.evidence["from"]["role"] == "officer" and event.evidence["to"]["role"] == "clerk"
    entries = [
        e for e in audit.about(session, f"account:{officer.id}") if e.kind == "account.event"
    ]
    assert entries and body(entries[-1])["action"] == "role_changed"
    assert entries[-1].actor == f"account:{admin.id}"
    resident = make_resident(session)
    with pytest.raises(ValidationFailed):  # an applicant's role is what it registered as
        identity.change_role(session, admin, resident.id, "officer", reason="x")
    assert audit.verify(session).ok


def test_replying_to_a_rectification_is_in_the_chain(session):
    from tongban.cases import service as cases

    resident = make_resident(session)
    approver = make_officer(session, "320500-housing_fund")
    case = make_case(session, resident)
    for action in ("accept", "start_review", "approve", "issue_result", "deliver"):
        case = cases.act(session, approver, case.id, action, "")
    cases.rate(session, resident, case.id, 2, "等待时间过长")
    item = cases.list_rectifications(session, approver)[0]
    cases.reply_rectification(session, approver, item.id, "已优化流程")
    entry, b = last_change(session, f"rectification:{item.id}")
    assert entry.actor == f"account:{approver.id}" and b["what"] == "rectification.replied"
    assert b["after"]["status"] == "replied" and "已优化流程" not in entry.body
    assert b["case_id"] == str(case.id)


def test_record_change_without_a_change_table(session):
    subject = f"thing:{uuid.uuid4()}"
    audit.record_change(session, "thing.set", subject, "system", before=1, after=2, reason="r")
    _, b = last_change(session, subject)
    assert b == {"what": "thing.set", "before": 1, "after": 2, "reason": "r"}
