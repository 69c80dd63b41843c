"""The pages of work orders, driven through the real app."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tongban.identity.models import Account

from builders import (
    BORDER_WUJIANG_JIASHAN,
    PASSWORD,
    TINY_PNG,
    make_city_staff,
    make_officer,
    make_resident,
    make_supervisor,
    make_work_order,
)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def login(client: TestClient, account: Account) -> str:
    page = client.get("/login")
    csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    r = client.post(
        "/login",
        data={"username": account.username, "password": PASSWORD, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return CSRF.search(client.get("/tickets").text).group(1)  # type: ignore[union-attr]


def report_form(csrf: str, **kw: str) -> dict[str, str]:
    lat, lon = BORDER_WUJIANG_JIASHAN
    data = {
        "csrf_token": csrf,
        "category_code": "water_pollution",
        "urgency": "complaint",
        "description": "太浦河边漂浮大量垃圾",
        "lat": str(lat),
        "lon": str(lon),
        "address": "汾湖边界河段",
    }
    data.update(kw)
    return data


def test_a_resident_reports_with_a_photo_and_both_sides_see_it(client, session):
    resident = make_resident(session, city="320500")
    csrf = login(client, resident)
    page = client.get("/tickets/report")
    assert page.status_code == 200 and "问题类别" in page.text
    r = client.post(
        "/tickets/report",
        data=report_form(csrf),
        files=[("photos", ("river.png", TINY_PNG, "image/png"))],
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    detail = client.get(r.headers["location"])
    assert "跨界联办" in detail.text and "嘉兴市生态环境局" in detail.text
    photo = re.search(r'src="(/tickets/photos/[^"]+)"', detail.text)
    assert photo and client.get(photo.group(1)).content.startswith(b"\x89PNG")
    for code in ("320500-ecology_environment", "330400-ecology_environment"):
        c = TestClient(client.app)
        login(c, make_officer(session, code, duty="reviewer"))
        listing = c.get("/tickets")
        assert "汾湖边界河段" in listing.text
    stranger = TestClient(client.app)
    login(stranger, make_officer(session, "320100-transport"))
    assert stranger.get(photo.group(1)).status_code == 404


def test_bad_input_re_renders_the_form_in_chinese(client, session):
    csrf = login(client, make_resident(session, city="320500"))
    r = client.post("/tickets/report", data=report_form(csrf, description="", lat="abc"))
    assert r.status_code == 422 and "经纬度须为数字" in r.text
    r = client.post("/tickets/report", data=report_form(csrf, description=""))
    assert r.status_code == 422 and "请描述问题" in r.text
    r = client.post(
        "/tickets/report",
        data=report_form(csrf),
        files=[("photos", ("x.pdf", b"%PDF-1.4 x", "application/pdf"))],
    )
    assert r.status_code == 415 and "PNG" in r.text


def test_a_duplicate_is_offered_for_merging_and_photos_are_kept(client, session):
    first = make_work_order(session, where=BORDER_WUJIANG_JIASHAN, category="water_pollution")
    csrf = login(client, make_resident(session, city="320500"))
    r = client.post(
        "/tickets/report",
        data=report_form(csrf),
        files=[("photos", ("river.png", TINY_PNG, "image/png"))],
    )
    assert r.status_code == 409 and first.number in r.text and "合并到所选工单" in r.text
    kept = re.findall(r'name="photo_ids" value="([^"]+)"', r.text)
    assert len(kept) == 1
    r = client.post(
        "/tickets/report",
        data={**report_form(csrf), "merge_into": str(first.id), "photo_ids": kept[0]},
        follow_redirects=False,
    )
    assert r.status_code == 303
    merged = client.get(r.headers["location"])
    assert "已合并" in merged.text and first.number in merged.text


def test_the_loop_through_the_pages(client, session):
    resident = make_resident(session, city="320500")
    wo = make_work_order(session, resident)
    officer_client = TestClient(client.app)
    csrf = login(officer_client, make_officer(session, "320500-transport"))
    for action in ("accept", "start"):
        r = officer_client.post(
            f"/tickets/{wo.id}/act",
            data={"csrf_token": csrf, "action": action},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    r = officer_client.post(f"/tickets/{wo.id}/act", data={"csrf_token": csrf, "action": "fix"})
    assert r.status_code == 422 and "处置照片" in r.text
    r = officer_client.post(
        f"/tickets/{wo.id}/act",
        data={"csrf_token": csrf, "action": "fix", "comment": "已修复"},
        files=[("photos", ("after.png", TINY_PNG, "image/png"))],
        follow_redirects=False,
    )
    assert r.status_code == 303
    dispatcher = TestClient(client.app)
    dcsrf = login(dispatcher, make_city_staff(session, "dispatcher", "320500"))
    assert "办结待核查（1）" in dispatcher.get("/tickets").text
    r = dispatcher.post(
        f"/tickets/{wo.id}/act",
        data={"csrf_token": dcsrf, "action": "verify"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    rcsrf = login(client, resident)
    r = client.post(f"/tickets/{wo.id}/act", data={"csrf_token": rcsrf, "action": "unsatisfied"})
    assert r.status_code == 422 and "须说明理由" in r.text
    r = client.post(
        f"/tickets/{wo.id}/act",
        data={"csrf_token": rcsrf, "action": "satisfied"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "已结案" in client.get(f"/tickets/{wo.id}").text


def test_supervisor_pages(client, session):
    wo = make_work_order(session)
    sup = make_supervisor(session, "320000")
    csrf = login(client, sup)
    r = client.post(
        f"/tickets/{wo.id}/supervise",
        data={"csrf_token": csrf, "demand": "限期办结", "within_hours": "4"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "督办单 DB320000" in client.get(f"/tickets/{wo.id}").text
    figures = client.get("/tickets/figures")
    assert figures.status_code == 200 and "按时办结率" in figures.text
    r = client.post(
        "/tickets/tasks",
        data={
            "csrf_token": csrf,
            "kind": "task",
            "title": "示范区跨界河湖联保",
            "units": "320500-transport",
            "milestone_title": "排查完成",
            "milestone_due": "2030-01-01",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "示范区跨界河湖联保" in client.get(r.headers["location"]).text
    assert client.get("/tickets/tasks").status_code == 200
