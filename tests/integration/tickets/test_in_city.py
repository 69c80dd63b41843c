"""A reported point must lie inside the city the report names, in every channel a
work order comes in by: the report page, the JSON API and Open311's POST requests —
one check (the report map's outlines), a 422 problem naming the field in Chinese (in
Open311's own error format there, naming lat/long); coordinates out of range are
refused before any geometry."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from integration.tickets.test_federation import BORDER, Elsewhere, _lead, _receive, _refused
from tongban.tickets.models import WorkOrder
from tongban.tickets.service import federation, open311

from builders import INSIDE_SUZHOU, make_resident, token_for

HANGZHOU = (30.26, 120.16)
#: Far out in the East China Sea: in no city of the region (and beyond snapping reach).
AT_SEA = (29.0, 125.0)


def _count(session) -> int:
    return session.scalar(select(func.count()).select_from(WorkOrder))


def _body(lat: object, lon: object, city: str | None = "320500") -> dict[str, object]:
    b: dict[str, object] = {
        "category_code": "road_damage",
        "urgency": "complaint",
        "description": "路面坑洼",
        "lat": lat,
        "lon": lon,
        "allow_duplicate": True,
    }
    if city:
        b["city_code"] = city
    return b


@pytest.fixture
def api_key(session) -> str:
    return open311.create_client(session, "测试客户端")[1]


# --- JSON API ---------------------------------------------------------------------------


def test_api_takes_a_point_inside_the_chosen_city(client, session):
    h = token_for(client, make_resident(session, city="320500"))
    r = client.post("/api/v1/tickets", headers=h, json=_body(*INSIDE_SUZHOU))
    assert r.status_code == 201, r.text
    assert r.json()["city_code"] == "320500"


def test_api_refuses_a_point_outside_the_chosen_city(client, session):
    h = token_for(client, make_resident(session, city="320500"))
    before = _count(session)
    r = client.post("/api/v1/tickets", headers=h, json=_body(*HANGZHOU))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    p = r.json()
    assert p["type"].endswith("outside-city") and p["detail"] == "所选位置不在苏州市范围内"
    assert [e["field"] for e in p["errors"]] == ["lat"]
    assert "苏州市边界内" in p["errors"][0]["message"]
    assert _count(session) == before  # nothing written (before this check it went to 杭州)


def test_api_reports_the_point_with_the_other_errors_at_once(client, session):
    h = token_for(client, make_resident(session, city="320500"))
    r = client.post(
        "/api/v1/tickets", headers=h, json={**_body(*HANGZHOU), "urgency": "no-such-urgency"}
    )
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"urgency", "lat"}


@pytest.mark.parametrize(
    ("lat", "lon", "field"),
    [(91, 120.6, "lat"), (31.3, 181, "lon"), ("abc", 120.6, "lat"), (31.3, "NaN", "lon")],
)
def test_api_refuses_a_bad_number(client, session, lat, lon, field):
    h = token_for(client, make_resident(session, city="320500"))
    r = client.post("/api/v1/tickets", headers=h, json=_body(lat, lon))
    assert r.status_code == 422, r.text
    assert field in {e["field"] for e in r.json()["errors"]}


# --- Open311 ----------------------------------------------------------------------------


def _post(client, api_key: str, lat: str, lon: str, city: str | None = "320500"):
    data = {"api_key": api_key, "service_code": "road_damage", "lat": lat, "long": lon}
    if city:
        data["jurisdiction_id"] = city
    return client.post("/open311/v2/requests.json", data=data)


def test_open311_takes_a_point_inside_the_jurisdiction(client, session, api_key):
    r = _post(client, api_key, *map(str, INSIDE_SUZHOU))
    assert r.status_code == 200, r.text
    number = r.json()[0]["service_request_id"]
    assert session.scalar(select(WorkOrder.city_code).where(WorkOrder.number == number)) == (
        "320500"
    )


def test_open311_refuses_a_point_outside_the_jurisdiction(client, session, api_key):
    before = _count(session)
    r = _post(client, api_key, *map(str, HANGZHOU))
    assert r.status_code == 400, r.text
    (err,) = r.json()
    assert err["code"] == 400
    assert err["description"].startswith("所选位置不在苏州市范围内")
    assert "lat/long" in err["description"]
    assert _count(session) == before


def test_open311_without_a_jurisdiction_maps_the_point_to_its_city(client, session, api_key):
    r = _post(client, api_key, *map(str, HANGZHOU), city=None)
    assert r.status_code == 200, r.text
    number = r.json()[0]["service_request_id"]
    assert session.scalar(select(WorkOrder.city_code).where(WorkOrder.number == number)) == (
        "330100"
    )


def test_open311_without_a_jurisdiction_refuses_a_point_outside_the_region(
    client, session, api_key
):
    r = _post(client, api_key, *map(str, AT_SEA), city=None)
    assert r.status_code == 400, r.text
    assert "lat/long" in r.json()[0]["description"]
    assert "服务范围" in r.json()[0]["description"]


@pytest.mark.parametrize(
    ("lat", "lon", "name"), [("95", "120.6", "lat"), ("31.3", "x", "long"), ("nan", "120", "lat")]
)
def test_open311_refuses_a_bad_number(client, session, api_key, lat, lon, name):
    r = _post(client, api_key, lat, lon)
    assert r.status_code == 400, r.text
    assert r.json()[0]["description"].startswith(f"{name} is not a valid coordinate")


# --- a peer's snapshot ------------------------------------------------------------------


def test_a_peers_snapshot_with_a_point_outside_its_city_is_refused(session):
    """`ticket.shared` carries the reported point: the co-handler's node checks it lies
    in the city the snapshot names, as its own intake would (the lead placed it)."""
    wo, _, _ = _lead(session)
    assert wo.lat == BORDER[0]
    snap = Elsewhere(wo).snapshot(session, wo)
    for lat, lon in (HANGZHOU, AT_SEA):
        r = _refused(session, federation.MSG_SHARED, {**snap, "lat": lat, "lon": lon})
        assert r.reason == "not-allowed" and "不在所报城市 310000 范围内" in r.detail
    # Out of range is refused by the schema, before any check.
    with pytest.raises(Exception, match="lat"):
        _receive(session, federation.MSG_SHARED, {**snap, "lat": 91.0})
    # The lead's own point goes through.
    assert _receive(session, federation.MSG_SHARED, snap)
