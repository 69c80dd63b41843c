"""The seven inputs of issue 10 item 5 that answered 500: each is now a 4xx naming the
field (API) or the counter page re-rendered with a Chinese message."""

from __future__ import annotations

import pytest

from builders import (
    csrf_of,
    id_card_request,
    make_filing,
    make_hospital_staff,
    make_institution,
    make_insured,
    make_licence,
    make_officer,
    make_resident,
    sign_in,
    token_for,
)

PROBLEM = "application/problem+json"


def _fields(r) -> list[str]:  # type: ignore[no-untyped-def]
    assert r.headers["content-type"].startswith(PROBLEM), r.text
    return [e["field"] for e in r.json().get("errors", [])]


def test_status_list_number_beyond_64_bits_is_a_4xx(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get(f"/api/v1/status-lists/340000/{2**64 + 1}")
    assert r.status_code == 422, r.text
    assert "list_no" in _fields(r)


@pytest.mark.parametrize("lat,lon", [("NaN", 120.0), (31.0, "Infinity"), (31.0, "-Infinity")])
def test_route_refuses_non_finite_coordinates(client, lat, lon) -> None:  # type: ignore[no-untyped-def]
    body = f'{{"category_code": "road_damage", "lat": {lat}, "lon": {lon}}}'
    r = client.post(
        "/api/v1/tickets/route", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert set(_fields(r)) & {"lat", "lon"}


@pytest.mark.parametrize(
    "field,value",
    [
        ("valid_from", "2026-01-01T00:00:00"),  # naive
        ("valid_until", "9999-12-31T23:59:59+08:00"),  # year 9999
        ("valid_from", "9999-12-31T23:59:59Z"),
    ],
)
def test_licence_issuance_refuses_naive_and_far_datetimes(client, session, field, value) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session)
    oh = token_for(client, make_officer(session, "340100-public_security"))
    r = client.post(
        "/api/v1/licences", headers=oh, json=id_card_request(resident, **{field: value})
    )
    assert r.status_code == 422, r.text
    assert field in _fields(r)


def test_reconciliation_refuses_amounts_beyond_bounds(client, session) -> None:  # type: ignore[no-untyped-def]
    inst = make_institution(session, "320500", level=3)
    h = token_for(client, make_hospital_staff(session, inst))
    body = {"day": "2026-03-02", "count": 1, "total": 10**20, "fund": 0, "account": 0, "cash": 0}
    r = client.post("/api/v1/medical/reconciliations", headers=h, json=body)
    assert r.status_code == 422, r.text
    assert "total" in _fields(r)
    detail = {"txn_id": "X", "total": 1, "fund": 10**20, "account": 0, "cash": 0}
    r = client.post(
        "/api/v1/medical/reconciliations",
        headers=h,
        json={**body, "total": 1, "details": [detail]},
    )
    assert r.status_code == 422, r.text
    assert "details.0.fund" in _fields(r)


def _counter_visit(client, session) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A hospital's staff member signed in, with a visit of an insured person from
    elsewhere opened on the counter page: the visit's URL and the page's CSRF token."""
    inst = make_institution(session, "310000", level=3)
    staff = make_hospital_staff(session, inst)
    person = make_insured(session, "340100")
    make_filing(session, person, "310000")
    sign_in(client, staff)
    csrf = csrf_of(client.get("/medical/counter").text)
    r = client.post(
        "/medical/counter/visits",
        data={"csrf_token": csrf, "id_number": person.id_number, "visit_no": "MZ1"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return r.headers["location"], csrf


@pytest.mark.parametrize("price", ["sNaN", "Infinity", "-Infinity", "NaN", "1e400", "1e20"])
def test_counter_page_refuses_non_finite_prices(client, session, price) -> None:  # type: ignore[no-untyped-def]
    visit_url, csrf = _counter_visit(client, session)
    r = client.post(
        visit_url + "/items",
        data={"csrf_token": csrf, "code": ["T0001"], "quantity": ["1"], "price": [price]},
    )
    assert r.status_code == 422, r.text
    assert "第 1 行" in r.text and "单价" in r.text
    assert r.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("qty", ["1e3", "99999999999999999999", "-1", "abc"])
def test_counter_page_refuses_bad_quantities(client, session, qty) -> None:  # type: ignore[no-untyped-def]
    visit_url, csrf = _counter_visit(client, session)
    r = client.post(
        visit_url + "/items",
        data={"csrf_token": csrf, "code": ["T0001"], "quantity": [qty], "price": ["1"]},
    )
    assert r.status_code == 422, r.text
    assert "第 1 行" in r.text and "数量" in r.text


@pytest.mark.parametrize("idx", [2**64 + 1, 2**63, -1, 2**31])
def test_status_index_beyond_the_list_is_unavailable_not_a_crash(session, idx) -> None:  # type: ignore[no-untyped-def]
    """A presentation's status index comes from whoever signed it: beyond 64 bits it used
    to reach the database query (OverflowError, 500) before the range check."""
    from tongban.licences.rejection import LicenceRejected, RejectReason
    from tongban.licences.status import NodeStatuses

    lic = make_licence(session, make_resident(session))
    with pytest.raises(LicenceRejected) as e:
        NodeStatuses(session).status_of(lic.status_uri, idx)
    assert e.value.reason is RejectReason.STATUS_UNAVAILABLE
    assert NodeStatuses(session).status_of(lic.status_uri, lic.status_index) == 0
