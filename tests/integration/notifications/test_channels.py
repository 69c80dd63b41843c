"""Outbound channels: e-mail over a real SMTP conversation with a local server (aiosmtpd),
SMS through a webhook gateway on a local HTTP server, and the outbox that retries a
failed delivery until it goes through — never losing it."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from tongban.db import utcnow
from tongban.notifications import channels, domain, service, tasks
from tongban.notifications.domain import ChannelName
from tongban.notifications.models import Delivery

from builders import make_resident


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """An SMTP server's handler that keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_port() -> int:
    return free_port()


def start_smtp(port: int) -> tuple[Controller, Sink]:
    sink = Sink()
    ctl = Controller(sink, hostname="127.0.0.1", port=port)
    ctl.start()
    return ctl, sink


def parsed(envelope: Any) -> email.message.EmailMessage:
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def test_smtp_channel_sends_utf8_subject_and_body(smtp_port):
    ctl, sink = start_smtp(smtp_port)
    try:
        ch = channels.SmtpEmail("127.0.0.1", smtp_port, sender="noreply@tongban.test")
        ch.send("zhang.san@example.com", "您的办件已受理", "办件 3401…已受理，请留意。", "ref-1")
    finally:
        ctl.stop()
    (env,) = sink.received
    assert env.rcpt_tos == ["zhang.san@example.com"]
    assert env.mail_from == "noreply@tongban.test"
    msg = parsed(env)
    assert msg["Subject"] == "您的办件已受理"
    assert msg.get_content().strip() == "办件 3401…已受理，请留意。"
    assert msg.get_content_charset() == "utf-8"


def test_smtp_channel_down_raises_delivery_failed(smtp_port):
    ch = channels.SmtpEmail("127.0.0.1", smtp_port, sender="a@b.test", timeout=2)
    with pytest.raises(channels.DeliveryFailed):
        ch.send("x@example.com", "t", "b", "r")


def _message_with_email(session, address="li.si@example.com"):
    resident = make_resident(session)
    service.set_preferences(
        session,
        resident,
        email=address,
        phone=None,
        by_email=True,
        by_sms=False,
        available=(ChannelName.EMAIL, ChannelName.SMS),
    )
    rule = domain.rules_for(domain.CASE, "approve")[0]
    (msg,) = service.post(
        session,
        [resident.id],
        rule,
        "办件 320500-1（公积金提取）",
        link=None,
        record=None,
        dedupe="d",
    )
    session.commit()
    return msg


def _due_now(session, delivery_id):
    """Time passes: the delivery's next attempt is due."""
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(next_attempt_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()


def test_outbox_retries_while_the_smtp_server_is_down_and_delivers_when_it_is_up(
    session, factory, settings, smtp_port
):
    cfg = settings.model_copy(
        update={
            "notify_smtp_host": "127.0.0.1",
            "notify_smtp_port": smtp_port,
            "notify_timeout": 2.0,
            "notify_backoff": "30,120",
        }
    )
    msg = _message_with_email(session)
    (d,) = service.deliveries_of(session, msg.id)
    # Down: the attempt fails, is kept, and waits for its backoff.
    before = utcnow()
    assert tasks.deliver_due(factory, cfg) == {"sent": 0, "failed": 1, "waiting": 0}
    session.expire_all()
    d = session.get(Delivery, d.id)
    assert d.state == "pending" and d.attempts == 1 and "smtp" in (d.last_error or "")
    assert d.next_attempt_at >= before + timedelta(seconds=29)
    # Not due yet: nothing is tried.
    assert tasks.deliver_due(factory, cfg) == {"sent": 0, "failed": 0, "waiting": 0}
    # Still down at the second attempt: the next wait is the second step.
    _due_now(session, d.id)
    assert tasks.deliver_due(factory, cfg)["failed"] == 1
    session.expire_all()
    d = session.get(Delivery, d.id)
    assert d.attempts == 2 and d.next_attempt_at >= utcnow() + timedelta(seconds=100)
    # Up: the next due attempt delivers it, once.
    ctl, sink = start_smtp(smtp_port)
    try:
        _due_now(session, d.id)
        assert tasks.deliver_due(factory, cfg) == {"sent": 1, "failed": 0, "waiting": 0}
        assert tasks.deliver_due(factory, cfg) == {"sent": 0, "failed": 0, "waiting": 0}
    finally:
        ctl.stop()
    session.expire_all()
    d = session.get(Delivery, d.id)
    assert d.state == "sent" and d.sent_at is not None and d.last_error is None
    (env,) = sink.received
    assert env.rcpt_tos == ["li.si@example.com"]
    assert parsed(env)["Subject"] == "您的办件已准予办理"
    assert "公积金提取" in parsed(env).get_content()


def test_a_delivery_for_a_channel_not_configured_waits_instead_of_being_dropped(
    session, factory, settings
):
    msg = _message_with_email(session)
    (d,) = service.deliveries_of(session, msg.id)
    assert settings.notify_smtp_host is None
    assert tasks.deliver_due(factory, settings) == {"sent": 0, "failed": 0, "waiting": 1}
    session.expire_all()
    d = session.get(Delivery, d.id)
    assert d.state == "pending" and "未配置" in (d.last_error or "")


class Gateway(BaseHTTPRequestHandler):
    """A local SMS operator: answers with the next status of `statuses`."""

    statuses: list[int] = []
    received: list[tuple[dict[str, Any], str]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Gateway.received.append((json.loads(body), self.headers.get("Authorization", "")))
        self.send_response(Gateway.statuses.pop(0) if Gateway.statuses else 200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway():
    Gateway.statuses, Gateway.received = [], []
    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sms"
    server.shutdown()
    server.server_close()


def test_sms_through_the_webhook_gateway_with_a_retry(session, factory, settings, gateway):
    cfg = settings.model_copy(
        update={
            "notify_sms_gateway": "webhook",
            "notify_sms_webhook_url": gateway,
            "notify_sms_webhook_token": "s3cret",
        }
    )
    resident = make_resident(session)
    service.set_preferences(
        session,
        resident,
        email=None,
        phone="13912345678",
        by_email=False,
        by_sms=True,
        available=channels.configured(cfg),
    )
    rule = domain.rules_for(domain.LICENCE, "revoke")[0]
    (msg,) = service.post(
        session, [resident.id], rule, "您的居民身份证", link=None, record=None, dedupe="s"
    )
    session.commit()
    Gateway.statuses = [503]
    assert tasks.deliver_due(factory, cfg)["failed"] == 1
    (d,) = session.scalars(select(Delivery).where(Delivery.message_id == msg.id)).all()
    _due_now(session, d.id)
    assert tasks.deliver_due(factory, cfg)["sent"] == 1
    assert len(Gateway.received) == 2
    payload, auth = Gateway.received[-1]
    assert auth == "Bearer s3cret"
    assert payload["phone"] == "13912345678" and payload["id"] == str(d.id)
    assert (
        payload["text"].startswith("【通办】电子证照已撤销：") and "居民身份证" in payload["text"]
    )


def test_log_gateway_is_the_default_and_sends(caplog, settings):
    chans = channels.configured(settings)
    assert set(chans) == {ChannelName.SMS}  # no SMTP host: no e-mail channel offered
    with caplog.at_level("INFO", logger="tongban.notifications.channels"):
        chans[ChannelName.SMS].send("13800138000", "标题", "正文", "r1")
    assert "138***00" in caplog.text and "正文" in caplog.text
