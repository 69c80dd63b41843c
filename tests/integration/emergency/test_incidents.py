"""An incident across two nodes in one process (SQLite and PostgreSQL): node A serves
上海 and 安徽, node B 江苏 and 浙江. 合肥 (A) leads an epidemic cluster spanning 苏州 and
杭州 (B). The incident reaches B with its events; a task for 苏州 becomes a work order on
B (not on A) and its number and state come back to A; a 江苏 coordinator's entry is
recorded by the lead and reaches every copy; both nodes hold the same timeline in the
same order; after the close no new entry is accepted."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from integration.emergency.kit import staff
from tongban.emergency import incidents
from tongban.emergency.domain import Duty
from tongban.emergency.incidents_models import Incident, IncidentTask
from tongban.errors import Conflict, PermissionDenied
from tongban.identity.models import Account
from tongban.tickets.models import WorkOrder

HEFEI, SUZHOU, HANGZHOU = "340100", "320500", "330100"


def _timeline(node: Any, iid: Any) -> list[tuple[int, str, str, str]]:
    with node.session() as s:
        inc = s.get(Incident, iid)
        assert inc is not None
        return [(e.seq, e.action, e.actor_name, e.comment) for e in inc.events]


def _tasks(node: Any, iid: Any) -> list[tuple[str, str | None, str | None, bool]]:
    with node.session() as s:
        rows = s.scalars(select(IncidentTask).where(IncidentTask.incident_id == iid))
        return sorted(
            (t.city_code, t.work_order_number, t.work_order_state, t.work_order_id is not None)
            for t in rows
        )


def test_an_incident_led_by_hefei_is_shared_its_tasks_become_work_orders_where_they_belong(
    tools: Any, fed: dict[str, Any]
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    with a.session() as s:
        hf_id = staff(s, HEFEI, Duty.COORDINATOR).id
        s.commit()
    with b.session() as s:
        sz_id = staff(s, SUZHOU, Duty.COORDINATOR).id
        s.commit()

    with a.session() as s:
        inc = incidents.open_incident(
            s,
            s.get(Account, hf_id),
            type="epidemic",
            severity="III",
            title="合肥苏州杭州关联聚集性疫情",
            summary="合肥报告聚集性疫情，关联苏州、杭州",
            lead_city=HEFEI,
            cities=[SUZHOU, HANGZHOU],
        )
        s.commit()
        iid, number = inc.id, inc.number
        assert inc.participants == ["320000", "330000"]
    tools.drain(a, b)
    with b.session() as s:
        copy = s.get(Incident, iid)
        assert copy is not None and copy.replica and copy.state == "responding"
        # A participant may not lead: only the lead's node writes the incident.
        with pytest.raises(PermissionDenied):
            incidents.add_task(
                s,
                s.get(Account, sz_id),
                iid,
                city_code=SUZHOU,
                category_code="sanitation",
                title="x",
            )

    with a.session() as s:
        incidents.add_task(
            s,
            s.get(Account, hf_id),
            iid,
            city_code=SUZHOU,
            category_code="sanitation",
            title="姑苏区涉疫小区环境消杀",
            address="苏州市姑苏区",
        )
        incidents.add_task(
            s,
            s.get(Account, hf_id),
            iid,
            city_code=HEFEI,
            category_code="sanitation",
            title="蜀山区涉疫场所终末消毒",
        )
        s.commit()
    # 合肥's task became a work order on A at once; 苏州's waits for B.
    assert [t for t in _tasks(a, iid) if t[0] == SUZHOU] == [(SUZHOU, None, None, False)]
    (hefei_task,) = [t for t in _tasks(a, iid) if t[0] == HEFEI]
    assert hefei_task[1] is not None and hefei_task[3] is True
    tools.drain(a, b)
    with b.session() as s:
        wos = list(s.scalars(select(WorkOrder).where(WorkOrder.channel == "emergency")))
        assert [(w.city_code, w.jurisdiction_code) for w in wos] == [(SUZHOU, "320000")]
        assert number in wos[0].description
        wo_number = wos[0].number
    with a.session() as s:
        assert (
            s.scalar(select(func.count()).where(WorkOrder.number == wo_number)) == 0
        )  # not on the lead's node
    (suzhou_on_a,) = [t for t in _tasks(a, iid) if t[0] == SUZHOU]
    assert suzhou_on_a == (SUZHOU, wo_number, "dispatched", False)
    assert [t[:3] for t in _tasks(a, iid)] == [t[:3] for t in _tasks(b, iid)]

    # A participant's entry travels to the lead, which records it for everyone.
    with b.session() as s:
        assert incidents.add_entry(s, s.get(Account, sz_id), iid, "苏州已排查密接 12 人") is False
        s.commit()
    tools.drain(a, b)
    line = _timeline(a, iid)
    assert line == _timeline(b, iid)
    assert [e[1] for e in line] == ["open", "task", "task", "task_update", "task_update", "entry"]
    assert "江苏省" in line[-1][2] and line[-1][3] == "苏州已排查密接 12 人"
    assert [e[0] for e in line] == list(range(1, len(line) + 1))

    # The work order moves on B: the next sync tells the lead.
    with b.session() as s:
        wo = s.scalar(select(WorkOrder).where(WorkOrder.number == wo_number))
        assert wo is not None
        wo.state = "accepted"
        s.commit()
    with b.session() as s:
        assert incidents.sync_tasks(s) == 1
        s.commit()
    with b.session() as s:
        assert incidents.sync_tasks(s) == 0  # told once
    tools.drain(a, b)
    (suzhou_on_a,) = [t for t in _tasks(a, iid) if t[0] == SUZHOU]
    assert suzhou_on_a[2] == "accepted"

    with a.session() as s:
        incidents.step(s, s.get(Account, hf_id), iid, "handle")
        incidents.step(s, s.get(Account, hf_id), iid, "close", "疫情得到控制")
        s.commit()
    tools.drain(a, b)
    assert _timeline(a, iid) == _timeline(b, iid)
    with b.session() as s:
        copy = s.get(Incident, iid)
        assert copy is not None and copy.state == "closed"
        with pytest.raises(Conflict):
            incidents.add_entry(s, s.get(Account, sz_id), iid, "迟到的记录")
    for node in (a, b):
        assert node.outbox(status="dead") == [] and node.outbox(status="pending") == []
