"""Hand-overs and incidents over the JSON API on one node (serving both sides): errors
are problem+json naming the field (a field the purpose does not need, a missing one),
403 for someone without the duty, 409 `not-owner` for the receiver before the transfer
and for the sender after it; the transfer takes effect when the answer is delivered
(through the node's own inbox); the person's data-use log names the hand-over."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from integration.emergency.kit import PERSON, staff
from tongban.emergency.domain import Duty
from tongban.evidence.models import DataAccess

from builders import csrf_of, drain, sign_in, token_for

HEFEI, SUZHOU = "340100", "320500"
PROBLEM = "application/problem+json"


def _offer(client: TestClient, headers: dict[str, str], **kw: Any) -> Any:
    body = {
        "sender_city": HEFEI,
        "receiver_city": SUZHOU,
        "purpose": "close_contact",
        "reason": "密接人员已前往苏州",
        "subject": dict(PERSON),
        **kw,
    }
    return client.post("/api/v1/emergency/handovers", headers=headers, json=body)


def test_a_hand_over_over_the_api(
    client: TestClient, session: Session, factory: sessionmaker[Session]
) -> None:
    hefei = staff(session, HEFEI, Duty.COORDINATOR)
    suzhou = staff(session, SUZHOU, Duty.COORDINATOR)
    keeper = staff(session, HEFEI, Duty.KEEPER)
    session.commit()
    hf, sz = token_for(client, hefei), token_for(client, suzhou)

    r = _offer(client, hf, subject={**PERSON, "hospital": "苏州市第五人民医院"})
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert [e["field"] for e in r.json()["errors"]] == ["subject.hospital"]
    r = _offer(client, hf, reason="")
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["reason"]
    assert _offer(client, token_for(client, keeper)).status_code == 403
    assert _offer(client, sz).status_code == 403  # not a coordinator of 合肥

    r = _offer(client, hf)
    assert r.status_code == 201, r.text
    h = r.json()
    assert (h["state"], h["owner_jurisdiction"], h["may_act"]) == ("offered", "340000", True)
    url = f"/api/v1/emergency/handovers/{h['id']}"

    r = client.post(f"{url}/follow-ups", headers=sz, json={"note": "已联系"})
    assert r.status_code == 409 and r.json()["type"].endswith("not-owner")
    r = client.post(f"{url}/answer", headers=sz, json={"accept": True})
    assert r.status_code == 202 and r.json()["state"] == "offered"
    r = client.post(f"{url}/answer", headers=sz, json={"accept": True})
    assert r.status_code == 409 and r.json()["type"].endswith("already-answered")

    drain(factory)  # the answer reaches the sender's record through the inbox
    got = client.get(url, headers=sz).json()
    assert (got["state"], got["owner_jurisdiction"]) == ("transferred", "320000")
    assert [e["action"] for e in got["events"]] == ["offer", "accept"]
    r = client.post(f"{url}/withdraw", headers=hf, json={"note": "误发"})
    assert r.status_code == 409
    r = client.post(f"{url}/follow-ups", headers=hf, json={"note": "继续跟进"})
    assert r.status_code == 409 and r.json()["type"].endswith("not-owner")
    r = client.post(f"{url}/follow-ups", headers=sz, json={"note": "已落实居家隔离"})
    assert r.status_code == 200 and r.json()["events"][-1]["action"] == "follow_up"

    session.expire_all()
    use = session.scalar(select(DataAccess).where(DataAccess.case_number == h["number"]))
    assert use is not None and use.subject_identifier == PERSON["id_number"]
    assert sorted(use.fields) == sorted(PERSON)


def test_an_incident_over_the_api(
    client: TestClient, session: Session, factory: sessionmaker[Session]
) -> None:
    hefei = staff(session, HEFEI, Duty.COORDINATOR)
    suzhou = staff(session, SUZHOU, Duty.COORDINATOR)
    session.commit()
    hf, sz = token_for(client, hefei), token_for(client, suzhou)
    body = {"type": "flood", "severity": "II", "title": "", "lead_city": HEFEI, "cities": [SUZHOU]}
    r = client.post("/api/v1/emergency/incidents", headers=hf, json=body)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["title"]
    body["title"] = "巢湖流域洪涝"
    assert client.post("/api/v1/emergency/incidents", headers=sz, json=body).status_code == 403
    r = client.post("/api/v1/emergency/incidents", headers=hf, json=body)
    assert r.status_code == 201, r.text
    inc = r.json()
    assert inc["participants"] == ["320000"] and inc["state_label"] == "响应中"
    url = f"/api/v1/emergency/incidents/{inc['id']}"
    task = {"city_code": "310000", "category_code": "sanitation", "title": "排涝"}
    r = client.post(f"{url}/tasks", headers=hf, json=task)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "city_code"
    r = client.post(f"{url}/tasks", headers=hf, json={**task, "city_code": SUZHOU})
    assert r.status_code == 201
    (t,) = r.json()["tasks"]
    assert t["work_order_number"] and t["work_order_label"] == "已派单，待签收"
    assert client.post(f"{url}/tasks", headers=sz, json=task).status_code == 403
    r = client.post(f"{url}/entries", headers=sz, json={"text": "苏州已开闸泄洪"})
    assert r.status_code == 202 and r.json() == {"recorded": True}  # this node leads too
    r = client.post(f"{url}/steps", headers=hf, json={"action": "close"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "note"
    r = client.post(f"{url}/steps", headers=hf, json={"action": "close", "note": "洪水退去"})
    assert r.status_code == 200 and r.json()["state"] == "closed"
    r = client.post(f"{url}/entries", headers=sz, json={"text": "迟到"})
    assert r.status_code == 409
    actions = [e["action"] for e in client.get(url, headers=sz).json()["timeline"]]
    assert actions == ["open", "task", "task_update", "entry", "close"]
    session.commit()
    drain(factory)


def test_an_incident_page_form_refused_then_taken(client: TestClient, session: Session) -> None:
    """The incident page's forms: a refused timeline entry shows the page again (422)
    with its message beside the form and writes nothing; an accepted one goes back to
    the page with `done`."""
    hefei = staff(session, HEFEI, Duty.COORDINATOR)
    session.commit()
    hf = token_for(client, hefei)
    body = {"type": "flood", "severity": "II", "title": "巢湖流域洪涝", "lead_city": HEFEI,
            "cities": [SUZHOU]}  # fmt: skip
    inc = client.post("/api/v1/emergency/incidents", headers=hf, json=body).json()
    sign_in(client, hefei)
    page = client.get(f"/emergency/incidents/{inc['id']}")
    assert page.status_code == 200 and "巢湖流域洪涝" in page.text
    url = f"/emergency/incidents/{inc['id']}/entry"
    api = f"/api/v1/emergency/incidents/{inc['id']}"
    before = client.get(api, headers=hf).json()
    r = client.post(url, data={"csrf_token": csrf_of(page.text), "text": "  "})
    assert r.status_code == 422 and "巢湖流域洪涝" in r.text, r.text[:300]
    assert client.get(api, headers=hf).json() == before  # nothing written
    r = client.post(
        url,
        data={"csrf_token": csrf_of(page.text), "text": "水位回落，转入处置"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith(
        f"/emergency/incidents/{inc['id']}?done="
    )
    assert "水位回落，转入处置" in client.get(r.headers["location"]).text
    assert client.get(api, headers=hf).json() != before  # the taken entry is recorded
