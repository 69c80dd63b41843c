"""The worker's delivery of the outbox: each due delivery is claimed, sent over its
channel and marked sent, or given its next attempt by the backoff — never dropped. One
transaction per delivery, so a send is never repeated because a later one failed."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from tongban.config import Settings
from tongban.db import utcnow
from tongban.kernel.registry import Job
from tongban.notifications import channels, domain, service
from tongban.notifications.domain import ChannelName, DeliveryState

log = logging.getLogger(__name__)


def deliver_due(factory: sessionmaker[Session], settings: Settings) -> dict[str, int]:
    """One pass over the due deliveries (at most notify_batch): {"sent", "failed",
    "waiting"} — waiting: no channel configured for it here yet (tried again later)."""
    backoff = domain.parse_backoff(settings.notify_backoff)
    available = channels.configured(settings)
    counts = {"sent": 0, "failed": 0, "waiting": 0}
    with factory() as s:
        due = service.due_deliveries(s, utcnow(), settings.notify_batch)
    for delivery_id in due:
        with factory() as s:
            now = utcnow()
            # The lease: long enough for one attempt; the outcome replaces it.
            d = service.claim(s, delivery_id, domain.next_attempt(now, 1, backoff))
            if d is None:
                s.rollback()
                continue
            s.commit()
            channel = available.get(ChannelName(d.channel))
            msg = service.message_of(s, d)
            outcome = "waiting"
            if channel is not None:
                try:
                    channel.send(d.address, msg.title, msg.body, str(d.id))
                    outcome = "sent"
                except channels.DeliveryFailed as e:
                    outcome = "failed"
                    d.last_error = str(e)[:500]
                    log.warning("delivery %s over %s failed: %s", d.id, d.channel, e)
            else:
                d.last_error = f"本节点未配置{domain.CHANNEL_LABELS[ChannelName(d.channel)]}通道"
            d.attempts += 1
            if outcome == "sent":
                d.state = DeliveryState.SENT.value
                d.sent_at = utcnow()
                d.last_error = None
            else:
                d.next_attempt_at = domain.next_attempt(utcnow(), d.attempts, backoff)
            s.commit()
            counts[outcome] += 1
    return counts


def case_deadlines(factory: sessionmaker[Session], settings: Settings) -> int:
    """Officers hear of cases in their queue near or past their deadline (one job
    transaction; each case, deadline and flag told once)."""
    with factory() as s:
        written = service.warn_case_deadlines(s)
        s.commit()
    return written


JOBS = [
    Job("notifications.deliver", 10.0, deliver_due),
    Job("notifications.case_deadlines", 600.0, case_deadlines),
]
