"""The dashboard over HTTP: the pages for leaders and supervisors (and nobody else), the
CSV/XLSX exports, and the public open data — the DCAT-AP catalogue and daily series
with small cells suppressed and the audit position named."""

from __future__ import annotations

import io
from datetime import date, timedelta

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from integration.dashboard.kit import PLAN, build_cases
from tongban.dashboard import cellkey, service

from builders import make_resident, make_supervisor, sign_in, token_for

PROBLEM = "application/problem+json"


def _refreshed(session: Session) -> None:
    build_cases(session, PLAN)
    service.refresh(session, service.owns_for("*"), settle=timedelta(0))
    session.commit()


def test_supervisors_see_the_dashboard_others_are_refused(
    client: TestClient, session: Session
) -> None:
    _refreshed(session)
    boss = make_supervisor(session)
    resident = make_resident(session)
    session.commit()
    r = client.get("/dashboard", headers=token_for(client, resident))
    assert r.status_code == 403
    sign_in(client, boss)
    r = client.get("/dashboard?period=7d&indicator=cases.received")
    assert r.status_code == 200, r.text
    html = r.text
    assert "一体化监测" in html and "主要指标" in html and "<svg" in html
    assert "扰动后小于 10 件的统计单元已隐藏" in html  # the threshold is stated
    assert f"不超过 ±{cellkey.NOISE_MAX} 的固定扰动" in html  # and the noise
    assert "&lt;阈值" in html  # 7 cases: the headline count is suppressed
    assert "审计链第" in html
    assert 'style="' not in html  # CSP: no inline style
    r = client.get("/dashboard?start=2026-13-01")  # a page: the error page says why
    assert r.status_code == 422 and "日期格式应为 YYYY-MM-DD" in r.text
    r = client.get("/dashboard/authority?name=苏州市住房公积金管理中心&period=30d")
    assert r.status_code == 200 and "事项" in r.text
    r = client.get("/dashboard/matter?code=YRD-GJJ-0002")
    assert r.status_code == 200 and "城市间流向" in r.text


def test_every_table_exports_as_csv_and_xlsx(client: TestClient, session: Session) -> None:
    _refreshed(session)
    boss = make_supervisor(session)
    session.commit()
    h = token_for(client, boss)
    for name in ("headlines", "matrix", "trend", "authorities", "matters", "series"):
        r = client.get(f"/dashboard/export/{name}.csv?period=7d", headers=h)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.content.startswith("\ufeff".encode())
        r = client.get(f"/dashboard/export/{name}.xlsx?period=7d", headers=h)
        assert r.status_code == 200
        ws = load_workbook(io.BytesIO(r.content)).active
        assert ws is not None and "已隐藏" in str(ws.cell(2, 1).value)
    r = client.get("/dashboard/export/nope.csv", headers=h)
    assert r.status_code == 404
    r = client.get("/dashboard/export/authorities.csv?period=7d", headers=h)
    text = r.content.decode("utf-8-sig")
    assert "部门,收件,办结" in text
    r = client.get("/dashboard/export/matters.csv?period=7d", headers=h)
    assert "事项编码,事项名称,收件" in r.content.decode("utf-8-sig")
    assert "YRD-GJJ-0002" in r.content.decode("utf-8-sig")


def test_open_data_catalogue_and_series(client: TestClient, session: Session) -> None:
    _refreshed(session)
    r = client.get("/api/v1/open-data/catalog.jsonld")
    assert r.status_code == 200 and r.headers["content-type"] == "application/ld+json"
    cat = r.json()
    assert cat["@type"] == "dcat:Catalog"
    ids = {d["dct:identifier"] for d in cat["dcat:dataset"]}
    assert {"cases.received", "medical.settlement", "card.use"} <= ids
    ds = next(d for d in cat["dcat:dataset"] if d["dct:identifier"] == "cases.received")
    assert ds["dct:license"]["@id"].startswith("https://creativecommons.org/")
    assert f"±{cellkey.NOISE_MAX}" in ds["dct:description"]["@value"]
    assert ds["dct:accrualPeriodicity"]["@id"].endswith("/DAILY")
    assert ds["dcat:distribution"][0]["dcat:downloadURL"]["@id"].endswith(
        "/api/v1/open-data/datasets/cases.received/daily.csv"
    )
    today = date.today()
    r = client.get(
        f"/api/v1/open-data/datasets/cases.received/daily.json?start={today - timedelta(2)}"
        f"&end={today + timedelta(1)}"
    )
    assert r.status_code == 200
    body = r.json()
    assert body["provenance"]["audit_seq"] > 0 and len(body["provenance"]["audit_hash"]) == 64
    assert body["noise"]["method"] == "cell-key" and body["noise"]["max"] == cellkey.NOISE_MAX
    assert body["rows"] and all(row["suppressed"] and row["count"] is None for row in body["rows"])
    r = client.get("/api/v1/open-data/datasets/cases.received/daily.csv")
    assert r.status_code == 200 and r.headers["x-audit-seq"] == str(body["provenance"]["audit_seq"])
    assert r.text.splitlines()[0].startswith("date,from_city,to_city")
    r = client.get("/api/v1/open-data/datasets/nope/daily.json")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = client.get("/api/v1/open-data/datasets/cases.received/daily.json?start=2020-01-01")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "start"
    r = client.get("/api/v1/open-data/datasets/cases.received/daily.json?from_city=abc")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "from_city"
    r = client.get("/open-data")
    assert r.status_code == 200 and "CC BY 4.0" in r.text and "固定扰动" in r.text


def test_city_pairs_are_named_for_what_the_indicator_counts(
    client: TestClient, session: Session
) -> None:
    """Settlements go from the insured city to the treatment city, cases from the
    receiving city to the competent one: the matrix, the series and the heat map's text
    alternative say which, so a reader does not take 参保地 for 收件地."""
    _refreshed(session)
    boss = make_supervisor(session)
    session.commit()
    h = token_for(client, boss)
    for name in ("matrix", "series"):
        r = client.get(
            f"/dashboard/export/{name}.csv?period=7d&indicator=medical.settlement", headers=h
        )
        head = r.content.decode("utf-8-sig").splitlines()
        assert any("参保城市" in line and "就医城市" in line for line in head[:3]), head[:3]
        assert not any("收件城市" in line for line in head[:3])
        r = client.get(f"/dashboard/export/{name}.csv?period=7d", headers=h)
        head = r.content.decode("utf-8-sig").splitlines()
        assert any("收件城市" in line and "办理城市" in line for line in head[:3]), head[:3]
    sign_in(client, boss)
    r = client.get("/dashboard?period=7d&indicator=medical.clearing")
    assert r.status_code == 200 and "行为参保城市，列为就医城市" in r.text
