"""Outbound channels behind one interface: `send(address, subject, body, ref)` delivers
or raises `DeliveryFailed`. E-mail goes over SMTP (smtplib, UTF-8); SMS goes through a
gateway a deployment plugs in — an HTTP webhook, or the log only (the default)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Protocol

import httpx

from tongban.config import Settings
from tongban.notifications.domain import ChannelName

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The channel could not deliver now (server down, refused, gateway error): retried."""


class Channel(Protocol):
    """One way of reaching a person outside the platform."""

    @property
    def name(self) -> ChannelName: ...

    def send(self, address: str, subject: str, body: str, ref: str) -> None:
        """Deliver, or raise DeliveryFailed. `ref` is the delivery's id (idempotency)."""


@dataclass(frozen=True)
class SmtpEmail:
    """E-mail through an SMTP server (plain, STARTTLS or implicit TLS; optional login)."""

    host: str
    port: int
    sender: str
    tls: str = "none"
    user: str | None = None
    password: str | None = None
    timeout: float = 10.0
    name: ChannelName = ChannelName.EMAIL

    def send(self, address: str, subject: str, body: str, ref: str) -> None:
        msg = EmailMessage()
        msg["From"] = formataddr(("通办", self.sender))
        msg["To"] = address
        msg["Subject"] = subject
        msg["Message-ID"] = make_msgid(idstring=ref.replace("-", ""))
        msg.set_content(body, charset="utf-8")
        try:
            if self.tls == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.tls == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as e:
            raise DeliveryFailed(f"smtp {self.host}:{self.port}: {e}") from e


class SmsGateway(Protocol):
    """What a deployment's SMS operator integration provides."""

    def send_text(self, phone: str, text: str, ref: str) -> None:
        """Send one text message or raise DeliveryFailed."""


@dataclass(frozen=True)
class LogGateway:
    """No operator: each text message is written to the log (the default)."""

    def send_text(self, phone: str, text: str, ref: str) -> None:
        log.info("sms (log only) to %s***%s [%s]: %s", phone[:3], phone[-2:], ref, text)


@dataclass(frozen=True)
class WebhookGateway:
    """An operator behind an HTTP endpoint: POST {"phone", "text", "id"} as JSON with a
    bearer token; any 2xx is delivered, anything else (or no answer) is retried."""

    url: str
    token: str | None = None
    timeout: float = 10.0

    def send_text(self, phone: str, text: str, ref: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            r = httpx.post(
                self.url,
                json={"phone": phone, "text": text, "id": ref},
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.HTTPError as e:
            raise DeliveryFailed(f"sms gateway: {e}") from e
        if not r.is_success:
            raise DeliveryFailed(f"sms gateway answered {r.status_code}")


@dataclass(frozen=True)
class Sms:
    """Text messages through the configured gateway: the subject, then the body."""

    gateway: SmsGateway
    name: ChannelName = ChannelName.SMS

    def send(self, address: str, subject: str, body: str, ref: str) -> None:
        self.gateway.send_text(address, f"【通办】{subject}：{body}", ref)


def configured(settings: Settings) -> dict[ChannelName, Channel]:
    """The channels this node can send over: e-mail when an SMTP host is set, SMS always
    (through the log unless a gateway is configured)."""
    out: dict[ChannelName, Channel] = {}
    if settings.notify_smtp_host:
        out[ChannelName.EMAIL] = SmtpEmail(
            host=settings.notify_smtp_host,
            port=settings.notify_smtp_port,
            sender=settings.notify_email_from,
            tls=settings.notify_smtp_tls,
            user=settings.notify_smtp_user,
            password=settings.notify_smtp_password,
            timeout=settings.notify_timeout,
        )
    gateway: SmsGateway = LogGateway()
    if settings.notify_sms_gateway == "webhook" and settings.notify_sms_webhook_url:
        gateway = WebhookGateway(
            settings.notify_sms_webhook_url,
            settings.notify_sms_webhook_token,
            settings.notify_timeout,
        )
    out[ChannelName.SMS] = Sms(gateway)
    return out
