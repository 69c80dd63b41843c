"""The JSON API of work orders and the worker job."""

from __future__ import annotations

from tongban.tickets.tasks import watch_deadlines
from tongban.worker import periodic_jobs

from builders import (
    BORDER_WUJIANG_JIASHAN,
    TINY_PNG,
    make_officer,
    make_resident,
    make_work_order,
    token_for,
)


def test_report_route_and_act_over_the_api(client, session):
    resident = make_resident(session, city="320500")
    h = token_for(client, resident)
    cats = client.get("/api/v1/tickets/categories").json()
    assert any(
        c["code"] == "noise_social" and c["authority_type"] == "public_security" for c in cats
    )
    lat, lon = BORDER_WUJIANG_JIASHAN
    routed = client.post(
        "/api/v1/tickets/route", json={"category_code": "road_damage", "lat": lat, "lon": lon}
    ).json()
    assert routed["joint"] and routed["co_handlers"] == ["嘉兴市交通运输局"]
    photo = client.post(
        "/api/v1/tickets/photos", headers=h, files={"file": ("a.png", TINY_PNG, "image/png")}
    )
    assert photo.status_code == 201, photo.text
    body = {
        "category_code": "road_damage",
        "urgency": "complaint",
        "description": "边界道路坑洼",
        "lat": lat,
        "lon": lon,
        "photo_ids": [photo.json()["id"]],
    }
    r = client.post("/api/v1/tickets", headers=h, json=body)
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["joint"] and t["state"] == "dispatched" and len(t["parties"]) == 1
    again = client.post("/api/v1/tickets", headers=h, json={**body, "photo_ids": []})
    assert again.status_code == 409
    assert again.json()["type"].endswith("possible-duplicate")
    assert again.json()["errors"][0]["message"] == t["number"]
    officer = make_officer(session, "320500-transport")
    oh = token_for(client, officer)
    assert client.get(f"/api/v1/tickets/{t['number']}", headers=oh).json()["available_actions"] == [
        "accept",
        "return",
    ]
    r = client.post(f"/api/v1/tickets/{t['id']}/actions", headers=oh, json={"action": "accept"})
    assert r.status_code == 200 and r.json()["state"] == "accepted"
    r = client.post(f"/api/v1/tickets/{t['id']}/actions", headers=oh, json={"action": "verify"})
    assert r.status_code == 409
    assert client.get(f"/api/v1/tickets/{t['id']}", headers=h).json()["state"] == "accepted"
    assert [x["number"] for x in client.get("/api/v1/tickets", headers=h).json()] == [t["number"]]


def test_the_worker_runs_the_deadline_job(session, factory, settings):
    assert "tickets.deadlines" in [j.name for j in periodic_jobs()]
    make_work_order(session)
    session.commit()
    counts = watch_deadlines(factory, settings)
    assert set(counts) >= {"reminded", "escalated_head", "escalated_supervisor", "tasks_slipped"}
