"""What the two-node virtual-window tests set up again and again (the `pair` of
conftest.py: A serves 上海 and 安徽, B 江苏 and 浙江): the 合肥 officer who decides the
test matter, and a session a 苏州 clerk of B starts for it on A — queued, or taken."""

from __future__ import annotations

import uuid
from typing import Any

from tongban.catalog import service as catalog
from tongban.regions import service as regions
from tongban.virtualwindow import relay, service

from builders import SIMPLE_MATTER, make_clerk, make_officer


def hefei_officer(s: Any) -> Any:
    """A new officer of the 合肥 authority competent for SIMPLE_MATTER (not committed)."""
    matter = catalog.get_matter(s, SIMPLE_MATTER)
    auth = regions.competent_authority(
        s, matter.authority_type, matter.authority_level, "340000", "340100"
    )
    return make_officer(s, auth.code)


def queued_from_b(b: Any) -> tuple[uuid.UUID, uuid.UUID]:
    """A new 苏州 clerk of B starts a session for a 合肥 matter (it queues on A);
    (session id, clerk id), committed."""
    with b.session() as s:
        clerk = make_clerk(s, "320500")
        ticket = relay.start(s, clerk, SIMPLE_MATTER, "340100")
        s.commit()
        return ticket.session_id, clerk.id


def taken_on_a(a: Any, b: Any) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """`queued_from_b`, then a new 合肥 officer of A takes the session; (session id,
    clerk id, officer id), committed."""
    sid, clerk_id = queued_from_b(b)
    with a.session() as s:
        officer = hefei_officer(s)
        service.take(s, officer, sid)
        s.commit()
        return sid, clerk_id, officer.id
