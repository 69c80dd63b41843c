"""Hospital capacity on a real database (SQLite and PostgreSQL): reports kept as a history
with the latest per hospital, checked field by field, only by a keeper or coordinator of
the hospital's city; EDXL-HAVE 1.0 exported and imported back unchanged, hostile or
wrong XML refused with the part named; the per-city aggregate published at commit and
another jurisdiction's applied only when newer; the API and the page."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from integration.emergency.kit import serving, staff
from tongban.db import utcnow
from tongban.emergency import capacity, sharing
from tongban.emergency.capacity_models import CapacityReport, SharedCapacity
from tongban.emergency.domain import Duty
from tongban.errors import PermissionDenied, ValidationFailed
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage

from builders import csrf_of, make_resident, sign_in, token_for

HEFEI, WUHU = "340100", "340200"
PROBLEM = "application/problem+json"


def _in(code: str = "H001", city: str = HEFEI, **kw: Any) -> capacity.ReportIn:
    counts = kw.pop(
        "counts",
        {"general": (120, 500), "icu": (8, 40), "isolation": (3, 12), "ventilators": (15, 30)},
    )
    return capacity.ReportIn(
        hospital_code=code,
        hospital_name=kw.pop("name", f"测试医院{code}"),
        city_code=city,
        counts=counts,
        **kw,
    )


def test_reports_are_a_history_and_the_latest_is_the_state(session: Session) -> None:
    keeper = staff(session, HEFEI, Duty.KEEPER)
    t0 = utcnow() - timedelta(hours=30)
    first = capacity.report(session, keeper, _in(reported_at=t0))
    second = capacity.report(
        session,
        keeper,
        _in(
            counts={"general": (80, 500), "icu": (0, 40), "isolation": (1, 12)},
            ed_status="closed",
        ),
    )
    assert first.hospital_code == second.hospital_code == f"{HEFEI}-H001"
    latest = capacity.latest(session, city_code=HEFEI)
    assert [(r.id, r.icu_available, r.ed_status) for r in latest] == [(second.id, 0, "closed")]
    assert [r.id for r in capacity.history(session, f"{HEFEI}-H001")] == [second.id, first.id]
    # Absent kinds are zero, not the previous report's.
    assert second.ventilators_available == 0 and second.ventilators_baseline == 0

    capacity.report(session, keeper, _in("H002", counts={"icu": (5, 10)}))
    rows = {r.city_code: r for r in capacity.by_city(session, keeper, city=HEFEI)}
    assert rows[HEFEI].hospitals == 2
    assert rows[HEFEI].counts["icu"] == (5, 50) and rows[HEFEI].counts["general"] == (80, 500)
    assert rows[HEFEI].ed_diverting == 1 and not rows[HEFEI].shared
    # Filters: the emergency department's status.
    closed = capacity.hospitals(session, keeper, ed_status="closed")
    assert [r.hospital_code for r in closed] == [f"{HEFEI}-H001"]
    assert capacity.age_text(timedelta(hours=30)) == "30 小时前"
    assert capacity.age_text(timedelta(days=3)) == "3 天前"


def test_a_report_is_checked_field_by_field(session: Session) -> None:
    keeper = staff(session, HEFEI, Duty.KEEPER)
    with pytest.raises(ValidationFailed) as refused:
        capacity.report(
            session,
            keeper,
            _in(
                "",
                name="",
                status="burning",
                ed_status="x",
                counts={"icu": (-1, 10), "ventilators": (1, capacity.MAX_COUNT + 1)},
                reported_at=utcnow() + timedelta(hours=2),
            ),
        )
    fields = {e["field"] for e in refused.value.errors}
    assert fields == {
        "hospital_code",
        "hospital_name",
        "status",
        "ed_status",
        "icu_available",
        "ventilators_baseline",
        "reported_at",
    }
    # Several at once: every error is named by its position, nothing is written.
    with pytest.raises(ValidationFailed) as refused:
        capacity.report_many(session, keeper, [_in("H1"), _in("H2", status="x")], "json")
    assert [e["field"] for e in refused.value.errors] == ["hospitals[1].status"]
    assert session.scalar(select(CapacityReport.id)) is None


def test_only_a_keeper_or_coordinator_of_the_city_reports(session: Session) -> None:
    wuhu_keeper = staff(session, WUHU, Duty.KEEPER)
    with pytest.raises(PermissionDenied):
        capacity.report(session, wuhu_keeper, _in())
    with pytest.raises(PermissionDenied):
        capacity.hospitals(session, make_resident(session))
    coordinator = staff(session, HEFEI, Duty.COORDINATOR)
    assert capacity.report(session, coordinator, _in()).city_code == HEFEI


def test_edxl_have_round_trips(session: Session) -> None:
    keeper = staff(session, HEFEI, Duty.KEEPER)
    at = (utcnow() - timedelta(minutes=5)).replace(microsecond=0)
    capacity.report(
        session, keeper, _in(reported_at=at, status="compromised", comment="院区停电，备用电源")
    )
    capacity.report(session, keeper, _in("H002", reported_at=at, ed_status="advisory"))
    xml = capacity.export_have(capacity.latest(session))
    assert b"urn:oasis:names:tc:emergency:EDXL:HAVE:1.0" in xml
    assert b">AdultICU<" in xml and b">NegativeFlowIsolation<" in xml and b">Compromised<" in xml
    parsed = capacity.parse_have(xml)
    assert [(p.hospital_code, p.city_code, p.status, p.ed_status) for p in parsed] == [
        (f"{HEFEI}-H001", HEFEI, "compromised", "normal"),
        (f"{HEFEI}-H002", HEFEI, "normal", "advisory"),
    ]
    assert parsed[0].counts == {
        "general": (120, 500),
        "icu": (8, 40),
        "isolation": (3, 12),
        "ventilators": (15, 30),
    }
    assert parsed[0].reported_at == at and parsed[0].comment == "院区停电，备用电源"


HAVE = "urn:oasis:names:tc:emergency:EDXL:HAVE:1.0"


def _have(body: str) -> bytes:
    return f'<?xml version="1.0"?><HospitalStatus xmlns="{HAVE}">{body}</HospitalStatus>'.encode()


def _hospital(code: str, beds: str, when: str = "2026-11-28T08:00:00+08:00") -> str:
    return (
        "<Hospital><Organization><OrganizationInformation>"
        '<OrganisationName xmlns="urn:oasis:names:tc:ciq:xpil:3"><NameElement>某医院</NameElement>'
        "</OrganisationName>"
        f'<Identifiers xmlns="urn:oasis:names:tc:ciq:xpil:3"><Identifier>{code}</Identifier></Identifiers>'
        "</OrganizationInformation></Organization>"
        f"<HospitalBedCapacityStatus>{beds}</HospitalBedCapacityStatus>"
        f"<LastUpdateTime>{when}</LastUpdateTime></Hospital>"
    )


def _bed(kind: str, available: str, baseline: str = "10") -> str:
    return (
        f"<BedCapacity><BedType>{kind}</BedType><Capacity><AvailableCount>{available}"
        f"</AvailableCount><BaselineCount>{baseline}</BaselineCount></Capacity></BedCapacity>"
    )


def test_an_import_from_another_tool_sums_bed_types_and_names_bad_parts() -> None:
    doc = _have(
        _hospital("A1", _bed("AdultICU", "3") + _bed("PediatricICU", "2", "4") + _bed("Burn", "9"))
    )
    [one] = capacity.parse_have(doc, default_city=HEFEI)
    assert one.city_code == HEFEI and one.counts["icu"] == (5, 14)
    assert one.counts["general"] == (0, 0) and one.ed_status == "not_applicable"

    bad = _have(
        _hospital("A1", _bed("AdultICU", "3"))
        + _hospital("", _bed("AdultICU", "many"), when="yesterday")
    )
    with pytest.raises(ValidationFailed) as refused:
        capacity.parse_have(bad, default_city=HEFEI)
    assert {e["field"] for e in refused.value.errors} == {
        "hospitals[1].hospital_code",
        "hospitals[1].icu_available",
        "hospitals[1].reported_at",
    }


@pytest.mark.parametrize(
    "doc",
    [
        # billion laughs
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<HospitalStatus xmlns="urn:oasis:names:tc:emergency:EDXL:HAVE:1.0">&b;</HospitalStatus>',
        # an external entity
        b'<?xml version="1.0"?><!DOCTYPE h [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<HospitalStatus xmlns="urn:oasis:names:tc:emergency:EDXL:HAVE:1.0">&x;</HospitalStatus>',
        b"<HospitalStatus><unclosed></HospitalStatus>",
        b'<?xml version="1.0"?><EDXLDistribution xmlns="urn:oasis:names:tc:emergency:EDXL:DE:1.0"/>',
        _have(""),
    ],
)
def test_hostile_or_wrong_xml_is_refused(doc: bytes) -> None:
    with pytest.raises(ValidationFailed) as refused:
        capacity.parse_have(doc)
    assert refused.value.errors[0]["field"] in {"file", "hospitals"}


def test_capacity_is_published_at_commit_and_applied_only_when_newer(
    factory: sessionmaker[Session], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sharing, "targets", lambda _settings: ["320000"])
    s = serving(factory, settings, "340000")
    before = {m.id for m in s.scalars(select(OutboxMessage))}
    keeper = staff(s, HEFEI, Duty.KEEPER)
    capacity.report(s, keeper, _in("P1"))
    capacity.report(s, keeper, _in("P2", counts={"icu": (2, 6)}))
    s.commit()
    sent = [m for m in s.scalars(select(OutboxMessage)) if m.id not in before]
    assert [(m.type, m.source_jurisdiction, m.target_jurisdiction) for m in sent] == [
        (capacity.CAPACITY_PUBLISHED, "340000", "320000")
    ]
    [row] = [r for r in sent[0].payload["rows"] if r["city"] == HEFEI]
    assert row["hospitals"] >= 2 and row["icu"]["available"] >= 10
    capacity.CapacityPublished.model_validate_json(json.dumps(sent[0].payload))

    def pub(seq: int, icu: int, city: str = "320500") -> dict[str, Any]:
        pair = {"available": icu, "baseline": 50}
        return {
            "jurisdiction": "320000",
            "as_of": "2026-12-01T08:00:00+00:00",
            "seq": seq,
            "rows": [
                {
                    "city": city,
                    "hospitals": 3,
                    "general": pair,
                    "icu": pair,
                    "isolation": pair,
                    "ventilators": pair,
                    "ed_diverting": 1,
                }
            ],
        }

    sender = exchange.Sender("node-js", frozenset({"320000"}), "320000", "340000")
    capacity.authorise(
        s, capacity.CapacityPublished.model_validate_json(json.dumps(pub(2, 7))), sender
    )
    capacity.on_capacity_published(s, pub(2, 7), object())
    capacity.on_capacity_published(s, pub(1, 99), object())  # late: changes nothing
    held = {r.city_code: r.counts["icu"] for r in s.scalars(select(SharedCapacity))}
    assert held == {"320500": [7, 50]}
    rows = capacity.by_city(s, keeper, jurisdiction="320000")
    assert [(r.city_code, r.shared, r.counts["icu"]) for r in rows] == [("320500", True, (7, 50))]
    with pytest.raises(exchange.Refused):  # 杭州 is not 江苏's
        capacity.authorise(
            s,
            capacity.CapacityPublished.model_validate_json(json.dumps(pub(3, 1, "330100"))),
            sender,
        )
    s.close()


def test_the_api_reports_lists_exports_and_imports(client: TestClient, session: Session) -> None:
    keeper = staff(session, HEFEI, Duty.KEEPER)
    session.commit()
    h = token_for(client, keeper)
    body = {
        "hospitals": [
            {
                "hospital_code": "J1",
                "hospital_name": "合肥测试医院",
                "city_code": HEFEI,
                "ed_status": "advisory",
                "beds": {"icu": {"available": 4, "baseline": 20}},
                "ventilators": {"available": 6, "baseline": 9},
            }
        ]
    }
    r = client.post("/api/v1/emergency/capacity/reports", headers=h, json=body)
    assert r.status_code == 201, r.text
    r = client.get("/api/v1/emergency/capacity", headers=h, params={"city": HEFEI})
    [one] = [x for x in r.json() if x["hospital_code"] == f"{HEFEI}-J1"]
    assert one["beds"]["icu"] == {"available": 4, "baseline": 20}
    assert one["ventilators"]["available"] == 6 and one["source"] == "json"
    bad = {"hospitals": [{**body["hospitals"][0], "status": "gone"}]}
    r = client.post("/api/v1/emergency/capacity/reports", headers=h, json=bad)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["field"] == "status"

    xml = client.get("/api/v1/emergency/capacity/have.xml", headers=h)
    assert xml.status_code == 200 and xml.headers["content-type"].startswith("application/xml")
    changed = xml.content.replace(b">AdultICU<", b">PediatricICU<")
    r = client.post(
        "/api/v1/emergency/capacity/have",
        headers=h,
        files={"file": ("have.xml", changed, "application/xml")},
    )
    assert r.status_code == 201 and r.json()["hospitals"] >= 1
    hist = client.get(f"/api/v1/emergency/capacity/{HEFEI}-J1/history", headers=h).json()
    assert [x["source"] for x in hist][:2] == ["edxl-have", "json"]
    hostile = b'<!DOCTYPE h [<!ENTITY x SYSTEM "file:///etc/passwd">]><h>&x;</h>'
    r = client.post(
        "/api/v1/emergency/capacity/have",
        headers=h,
        files={"file": ("have.xml", hostile, "application/xml")},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    cities = client.get("/api/v1/emergency/capacity/cities", headers=h, params={"city": HEFEI})
    assert cities.json()[0]["counts"]["icu"]["available"] >= 4


def test_the_page_shows_the_table_and_the_form(client: TestClient, session: Session) -> None:
    keeper = staff(session, HEFEI, Duty.KEEPER)
    old = utcnow() - timedelta(hours=30)
    capacity.report(session, keeper, _in("OLD", name="旧报告医院", reported_at=old))
    session.commit()
    sign_in(client, keeper)
    page = client.get("/emergency/capacity", params={"city": HEFEI})
    assert page.status_code == 200
    assert "医疗救治能力" in page.text and "旧报告医院" in page.text
    assert "超过 24 小时未更新" in page.text and "导入 EDXL-HAVE 文件" in page.text
    form = {
        "csrf_token": csrf_of(page.text),
        "city_code": HEFEI,
        "hospital_code": "F1",
        "hospital_name": "表单医院",
        "status": "normal",
        "ed_status": "normal",
        "icu_available": "x",
    }
    r = client.post("/emergency/capacity/report", data=form)
    assert r.status_code == 422 and 'id="icu_available-error"' in r.text
    r = client.post(
        "/emergency/capacity/report", data={**form, "icu_available": "3"}, follow_redirects=False
    )
    assert r.status_code == 303
    assert "表单医院" in client.get("/emergency/capacity").text
    hist = client.get(f"/emergency/capacity/hospital/{HEFEI}-F1")
    assert hist.status_code == 200 and "页面报送" in hist.text
