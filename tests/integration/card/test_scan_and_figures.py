"""The venue staff's scan (this node as the venue's gate) and the operators' figures, over
the real app (SQLite and PostgreSQL): a 南京 senior admitted at a 杭州 museum with the
city's senior rule, a replay and a lost card refused, every use kept with the holder's
city; only the venue's staff scan; the figures per city pair count the uses and the
concessions, in JSON, CSV and on the page, for whom may see them."""

from __future__ import annotations

import csv
import io
import itertools
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import ric

from tongban.card import gate as gates
from tongban.card import gateauth, scanning, service
from tongban.card.device import Device
from tongban.card.models import CardUse
from tongban.identity import service as identity
from tongban.identity.models import Account
from tongban.regions import service as regions

from builders import PASSWORD, csrf_of, make_admin, make_clerk, make_resident, sign_in, token_for

PROBLEM = "application/problem+json"
_n = itertools.count(500)


def _senior(session: Session, city: str = "320100") -> tuple[Any, Any, Device]:
    area = {"320100": "320121", "310000": "310101"}[city]
    body = area + "19500307" + f"{next(_n) % 1000:03d}"
    holder = make_resident(session, city, id_number=body + ric.calc_check_digit(body + "0"))
    card = service.issue(session, service.holder_of(holder))
    device = Device.generate("ES256")
    device.credential = service.enrol(session, holder, device.public_jwk()).data
    session.commit()
    return holder, card, device


def _staff(session: Session, *venues: str) -> Account:
    city = regions.get_city(session, venues[0].split("-")[0])
    account = identity.create_account(
        session,
        username=f"venue{next(_n)}",
        password=PASSWORD,
        role="venue_staff",
        display_name="检票员",
        jurisdiction_code=city.jurisdiction_code,
        city_code=city.code,
    )
    for v in venues:
        scanning.grant(session, None, account, v)
    session.commit()
    return account


def _scan(client: TestClient, auth: dict[str, str], code: str, venue: str | None = None) -> Any:
    return client.post("/api/v1/card/scan", json={"code": code, "venue_code": venue}, headers=auth)


def test_venue_staff_scan_admits_with_the_citys_rule_and_refuses_replays_and_lost_cards(
    client: TestClient, session: Session
) -> None:
    holder, card, device = _senior(session)
    staff = _staff(session, "330100-museum")
    auth = token_for(client, staff)
    now = int(time.time())
    code = device.qr_text(now)

    r = _scan(client, auth, code)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["admitted"] is True and body["reason"] is None
    assert body["rule"] == "hangzhou.museum.60-priority"
    assert body["benefit"] == "免费参观（老年人优先入馆）"
    assert body["message"] == "通过：免费参观（老年人优先入馆）"
    assert body["holder"]["city"] == "320100" and body["holder"]["city_name"] == "南京市"
    assert body["venue"]["code"] == "330100-museum"
    use = session.get(CardUse, uuid.UUID(body["use_id"]))
    assert use is not None and use.admitted and use.card_city == "320100"
    assert use.card_id == card.id and use.gate_id == scanning.scan_gate_id(staff)

    again = _scan(client, auth, code).json()
    assert again["admitted"] is False and again["reason"] == "replayed"
    assert again["reason_label"] == "此码已使用，请刷新后重试"

    garbage = _scan(client, auth, "TBC1:NOTACODE").json()
    assert garbage["admitted"] is False and garbage["reason"] == "malformed"
    empty = _scan(client, auth, "   ")
    assert empty.status_code == 422 and empty.headers["content-type"].startswith(PROBLEM)
    assert empty.json()["errors"][0]["field"] == "code"

    service.act(session, holder, card.id, "report_lost", "遗失")
    session.commit()
    lost = _scan(client, auth, device.qr_text(now + 1)).json()
    assert lost["admitted"] is False and lost["reason"] == "revoked"
    assert "挂失" in lost["message"]


def test_a_scan_admission_is_a_replay_at_a_gate_of_the_same_operator(
    client: TestClient, session: Session, tmp_path: Path
) -> None:
    _holder, _card, device = _senior(session)
    staff = _staff(session, "330100-museum")
    state = tmp_path / "gate"
    config = gates.init(state, "zj-museum-02", "330100-museum", "http://testserver")
    gateauth.register(session, config.gate_id, config.venue_code, config.public_jwk())
    session.commit()
    now = int(time.time())
    code = device.qr_text(now)
    assert _scan(client, token_for(client, staff), code).json()["admitted"] is True
    gates.sync(state, client=client)
    gate = gates.load(state)
    try:
        assert gate.check(code, now + 5).reason is not None
        assert gate.check(code, now + 5).reason.value == "replayed"  # type: ignore[union-attr]
    finally:
        gate.close()


def test_only_the_venues_staff_scan(client: TestClient, session: Session) -> None:
    _holder, _card, device = _senior(session)
    code = device.qr_text(int(time.time()))
    staff = _staff(session, "330100-library")
    for who in (
        make_resident(session, "330100"),
        make_admin(session),
        make_clerk(session, "330100"),
    ):
        session.commit()
        r = _scan(client, token_for(client, who), code)
        assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM), r.text
    other = _scan(client, token_for(client, staff), code, "330100-museum")
    assert other.status_code == 403 and other.json()["type"].endswith("not-venue-staff")
    assert session.scalar(select(CardUse.id).where(CardUse.venue_code == "330100-museum")) is None
    # A grant is the administrator's, for a venue staff account and a venue it knows.
    admin = make_admin(session)
    session.commit()
    assert scanning.grant(session, admin, staff, "330100-museum").venue_code == "330100-museum"


def test_the_scan_page_and_its_form_without_javascript(
    client: TestClient, session: Session
) -> None:
    _holder, _card, device = _senior(session)
    staff = _staff(session, "330100-museum", "330100-lingyin")
    sign_in(client, staff)
    page = client.get("/venue/scan")
    assert page.status_code == 200 and "浙江省博物馆" in page.text
    assert 'src="/static/vendor/jsqr/jsQR.js"' in page.text
    assert page.headers["permissions-policy"] == "camera=(self)"
    assert client.get("/static/vendor/jsqr/jsQR.js").status_code == 200
    assert client.get("/card/assets/card-scan.js").status_code == 200
    r = client.post(
        "/venue/scan",
        data={
            "csrf_token": csrf_of(page.text),
            "venue": "330100-lingyin",
            "code": device.qr_text(int(time.time())),
        },
    )
    assert r.status_code == 200 and "灵隐飞来峰景区" in r.text
    assert "免票入园" in r.text and "通过" in r.text
    bad = client.post("/venue/scan", data={"csrf_token": csrf_of(page.text), "code": ""})
    assert bad.status_code == 422 and "请扫描或输入" in bad.text


def test_figures_per_city_pair_for_whom_may_see_them(client: TestClient, session: Session) -> None:
    _h1, _c1, nanjing = _senior(session, "320100")
    _h2, _c2, shanghai = _senior(session, "310000")
    staff = _staff(session, "330100-museum")
    auth = token_for(client, staff)
    now = int(time.time())
    for code in (nanjing.qr_text(now), nanjing.qr_text(now), shanghai.qr_text(now)):
        assert _scan(client, auth, code).status_code == 200
    admin = make_admin(session)
    session.commit()
    r = client.get("/api/v1/card/figures", headers=token_for(client, admin))
    assert r.status_code == 200, r.text
    rows = [x for x in r.json()["rows"] if x["operator"] == "zhejiang-museum"]
    by_pair = {(x["holder_city"], x["venue_city"]): x for x in rows}
    nj = by_pair[("320100", "330100")]
    assert (nj["uses"], nj["admitted"], nj["refused"], nj["concessions"]) == (2, 1, 1, 1)
    assert nj["cross_jurisdiction"] is True
    sh = by_pair[("310000", "330100")]
    assert (sh["uses"], sh["admitted"], sh["concessions"]) == (1, 1, 1)

    monthly = client.get(
        "/api/v1/card/figures?period=month&operator=zhejiang-museum", headers=auth
    ).json()
    assert {x["period"] for x in monthly["rows"]} == {
        time.strftime("%Y-%m", time.gmtime(now + 8 * 3600))
    }
    assert monthly["totals"]["uses"] == 3 and monthly["totals"]["concessions"] == 2

    text = client.get("/api/v1/card/figures?format=csv", headers=auth)
    assert text.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(text.text)))
    assert {(t["holder_city"], t["uses"]) for t in table} == {("320100", "2"), ("310000", "1")}

    # Venue staff see their own operator only; residents nothing; bad input is a 4xx.
    theirs = client.get("/api/v1/card/figures?operator=hangzhou-metro", headers=auth)
    assert theirs.status_code == 403
    resident = make_resident(session, "330100")
    session.commit()
    assert (
        client.get("/api/v1/card/figures", headers=token_for(client, resident)).status_code == 403
    )
    bad = client.get("/api/v1/card/figures?period=year", headers=auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "period"
    backwards = client.get("/api/v1/card/figures?start=2026-02-01&end=2026-01-01", headers=auth)
    assert backwards.status_code == 422

    sign_in(client, admin)
    page = client.get("/card/figures")
    assert page.status_code == 200 and "南京市 → 杭州市" in page.text and "跨省市" in page.text
    # The form's fields left empty: the last 30 days, as with none given.
    empty = client.get("/card/figures?start=&end=&period=day&operator=")
    assert empty.status_code == 200 and "南京市 → 杭州市" in empty.text

    # A refused filter comes back as the form, filled in as it was, with the message
    # beside the input to correct; no figures and no CSV link for it.
    backwards_page = client.get("/card/figures?start=2026-02-01&end=2026-01-01&period=month")
    assert backwards_page.status_code == 422
    form = backwards_page.text
    assert (
        'id="end-error"' in form and "不能早于开始日期" in form and "结束日期早于开始日期" in form
    )
    assert 'value="2026-02-01"' in form and 'value="2026-01-01"' in form
    assert '<option value="month" selected>' in form
    assert 'id="figures-totals"' not in form and 'id="figures-csv"' not in form
    garbled = client.get("/card/figures?start=2026-13-45")
    assert garbled.status_code == 422
    assert 'id="start-error"' in garbled.text and 'aria-invalid="true"' in garbled.text
    too_long = client.get("/card/figures?start=2024-01-01&end=2026-01-01")
    assert too_long.status_code == 422 and 'id="start-error"' in too_long.text
