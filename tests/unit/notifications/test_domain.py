"""The message rules, contact checks and backoff of notifications (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tongban.notifications import domain
from tongban.notifications.domain import Audience

T0 = datetime(2026, 11, 29, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "action", "audience", "topic"),
    [
        ("service_case", "submit", Audience.STAFF, "case.new"),
        ("service_case", "accept", Audience.PARTY, "case.accepted"),
        ("service_case", "refuse", Audience.PARTY, "case.refused"),
        ("service_case", "request_correction", Audience.PARTY, "case.correction"),
        ("service_case", "approve", Audience.PARTY, "case.approved"),
        ("service_case", "deny", Audience.PARTY, "case.denied"),
        ("service_case", "deliver", Audience.PARTY, "case.delivered"),
        ("ticket", "dispatch", Audience.STAFF, "ticket.new"),
        ("ticket", "fix", Audience.PARTY, "ticket.fixed"),
        ("ticket", "remind", Audience.STAFF, "ticket.deadline"),
        ("ticket", "supervise", Audience.STAFF, "ticket.supervision"),
        ("licence", "suspend", Audience.PARTY, "licence.suspended"),
        ("licence", "revoke", Audience.PARTY, "licence.revoked"),
        ("med_reservation", "reverse", Audience.PARTY, "medical.reversed"),
        ("data_use", "used", Audience.PARTY, "data.used"),
    ],
)
def test_each_family_has_its_message(kind, action, audience, topic):
    (rule,) = domain.rules_for(kind, action)
    assert (rule.audience, rule.topic) == (audience, topic)
    title, body = rule.render("办件 X1")
    assert title and body
    assert "办件 X1" in title + body


def test_steps_nobody_hears_of_have_no_rule():
    assert domain.rules_for("service_case", "start_review") == ()
    assert domain.rules_for("med_settlement", "reverse") == ()  # the insured side tells
    assert domain.rules_for("unknown", "accept") == ()


def test_texts_are_chinese():
    for rules in domain.RULES.values():
        for rule in rules:
            assert any("\u4e00" <= ch <= "\u9fff" for ch in rule.title)


@pytest.mark.parametrize("good", ["a@example.com", "zhang.san+tb@mail.gov.cn"])
def test_valid_emails(good):
    assert domain.email_problem(good) is None


@pytest.mark.parametrize("bad", ["", "a@", "@b.cn", "a b@c.cn", "a@localhost", "a@b.cn\n"])
def test_invalid_emails(bad):
    assert domain.email_problem(bad)


def test_mobile_numbers():
    assert domain.phone_problem("13800138000") is None
    for bad in ("1380013800", "23800138000", "12800138000", "+8613800138000"):
        assert domain.phone_problem(bad)


def test_backoff_steps_then_repeats_the_last_and_never_gives_up():
    backoff = domain.parse_backoff("30, 120,600")
    assert backoff == (30, 120, 600)
    waits = [domain.next_attempt(T0, n, backoff) - T0 for n in (1, 2, 3, 4, 50)]
    assert waits == [timedelta(seconds=s) for s in (30, 120, 600, 600, 600)]
    with pytest.raises(ValueError):
        domain.parse_backoff("0,10")


def test_dedupe_key_is_per_record_step_and_topic():
    a = domain.dedupe_key("ticket", "r1", 3, "ticket.new")
    assert a != domain.dedupe_key("ticket", "r1", 4, "ticket.new")
    assert a != domain.dedupe_key("ticket", "r2", 3, "ticket.new")
    assert len(domain.dedupe_key("k" * 100, "r" * 100, 1, "t")) <= 160
