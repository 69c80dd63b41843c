"""Open311 GeoReport v2, driven as the spec's examples do: form-encoded POST with an
api_key, GET with the standard filters, JSON and XML, errors in the spec's format."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from tongban.tickets.service import open311

from builders import BORDER_WUJIANG_JIASHAN, make_work_order

BASE = "/open311/v2"


@pytest.fixture
def api_key(session) -> str:
    return open311.create_client(session, "测试客户端")[1]


def xml(r) -> ET.Element:
    assert r.headers["content-type"].startswith("text/xml"), r.headers["content-type"]
    assert r.text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(r.content)


def test_discovery(client):
    j = client.get(f"{BASE}/discovery.json").json()
    (ep,) = j["endpoints"]
    assert ep["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert ep["url"].endswith("/open311/v2") and "application/json" in ep["formats"]
    root = xml(client.get(f"{BASE}/discovery.xml"))
    assert root.tag == "discovery"
    assert [f.text for f in root.findall("./endpoints/endpoint/formats/format")] == [
        "text/xml",
        "application/json",
    ]


def test_services_in_json_and_xml(client):
    services = client.get(f"{BASE}/services.json", params={"jurisdiction_id": "330400"}).json()
    by_code = {s["service_code"]: s for s in services}
    road = by_code["road_damage"]
    assert set(road) == {
        "service_code", "service_name", "description", "metadata", "type", "keywords", "group"
    }  # fmt: skip
    assert road["metadata"] is True and road["type"] == "realtime" and road["group"] == "道路设施"
    assert "投诉10 个工作日" in road["description"]  # 浙江's configured complaint deadline
    root = xml(client.get(f"{BASE}/services.xml"))
    assert root.tag == "services"
    codes = [s.findtext("service_code") for s in root.findall("service")]
    assert "road_damage" in codes
    assert root.find("service/metadata").text == "true"


def test_a_service_definition(client):
    d = client.get(f"{BASE}/services/manhole.json").json()
    (attr,) = d["attributes"]
    assert d["service_code"] == "manhole"
    assert attr["code"] == "urgency" and attr["datatype"] == "singlevaluelist"
    assert [v["key"] for v in attr["values"]] == ["urgent", "complaint"]
    root = xml(client.get(f"{BASE}/services/manhole.xml"))
    assert root.tag == "service_definition"
    assert [v.findtext("key") for v in root.findall("attributes/attribute/values/value")] == [
        "urgent",
        "complaint",
    ]


def test_post_then_get_a_request_and_its_token(client, api_key):
    lat, lon = BORDER_WUJIANG_JIASHAN
    r = client.post(
        f"{BASE}/requests.json",
        data={
            "api_key": api_key,
            "jurisdiction_id": "320500",
            "service_code": "road_damage",
            "lat": str(lat),
            "long": str(lon),
            "address_string": "汾湖大道与边界交叉口",
            "email": "someone@example.org",
            "first_name": "三",
            "last_name": "张",
            "phone": "13700000000",
            "description": "边界道路塌陷",
            "attribute[urgency]": "urgent",
            "device_id": "dev-1",
            "account_id": "acc-9",
        },
    )
    assert r.status_code == 200, r.text
    (created,) = r.json()
    assert created["account_id"] == "acc-9" and "当日办结" in created["service_notice"]
    sr_id, token = created["service_request_id"], created["token"]
    (one,) = client.get(f"{BASE}/requests/{sr_id}.json").json()
    assert one["status"] == "open" and one["service_code"] == "road_damage"
    assert one["agency_responsible"] == "苏州市交通运输局（协办：嘉兴市交通运输局）"
    assert "跨界联办" in one["status_notes"] and one["lat"] == lat and one["long"] == lon
    assert one["requested_datetime"].endswith("+08:00") and one["expected_datetime"]
    assert "someone@example.org" not in str(one) and "13700000000" not in str(one)
    assert client.get(f"{BASE}/tokens/{token}.json").json() == [
        {"service_request_id": sr_id, "token": token}
    ]
    root = xml(client.get(f"{BASE}/requests/{sr_id}.xml"))
    assert root.tag == "service_requests"
    assert root.findtext("request/service_request_id") == sr_id
    assert root.findtext("request/status") == "open"
    xml_post = client.post(
        f"{BASE}/requests.xml",
        data={"api_key": api_key, "jurisdiction_id": "320500", "service_code": "street_light",
              "lat": "31.31", "long": "120.63", "description": "路灯不亮"},
    )  # fmt: skip
    assert xml(xml_post).findtext("request/service_request_id").startswith("GD320500")


def test_get_requests_with_the_standard_filters(client, session):
    a = make_work_order(session, where=(31.30, 120.62), category="road_damage")
    b = make_work_order(session, where=(31.35, 120.60), category="street_light")
    c = make_work_order(session, where=(30.75, 120.75), category="road_damage")  # 嘉兴
    b.state = "closed"
    session.flush()
    listed = client.get(f"{BASE}/requests.json", params={"jurisdiction_id": "320500"}).json()
    ids = {x["service_request_id"] for x in listed}
    assert {a.number, b.number} <= ids and c.number not in ids
    by_code = client.get(
        f"{BASE}/requests.json",
        params={"jurisdiction_id": "320500", "service_code": "street_light"},
    ).json()
    assert {x["service_request_id"] for x in by_code} >= {b.number} and a.number not in {
        x["service_request_id"] for x in by_code
    }
    closed = client.get(f"{BASE}/requests.json", params={"status": "closed"}).json()
    assert b.number in {x["service_request_id"] for x in closed}
    assert a.number not in {x["service_request_id"] for x in closed}
    both = client.get(
        f"{BASE}/requests.json", params={"service_request_id": f"{a.number},{c.number}"}
    ).json()
    assert {x["service_request_id"] for x in both} == {a.number, c.number}
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert client.get(f"{BASE}/requests.json", params={"start_date": future}).json() == []
    root = xml(client.get(f"{BASE}/requests.xml", params={"service_request_id": a.number}))
    assert len(root.findall("request")) == 1


@pytest.mark.parametrize(
    ("method", "path", "data", "status"),
    [
        (
            "post",
            "/requests.json",
            {"service_code": "road_damage", "lat": "31.3", "long": "120.6"},
            403,
        ),
        ("post", "/requests.json", {"api_key": "wrong", "service_code": "road_damage"}, 403),
        ("get", "/services/nope.json", None, 404),
        ("get", "/requests/GD000.json", None, 404),
        ("get", "/tokens/nope.json", None, 404),
        ("get", "/services.json?jurisdiction_id=999999", None, 404),
        ("get", "/requests.json?start_date=yesterday", None, 400),
        ("get", "/requests.json?status=pending", None, 400),
        ("get", "/services", None, 404),
    ],
)
def test_errors_come_in_the_spec_format(client, method, path, data, status):
    r = getattr(client, method)(f"{BASE}{path}", **({"data": data} if data else {}))
    assert r.status_code == status, r.text
    (err,) = r.json()
    assert err["code"] == status and err["description"]


def test_post_validation_errors_in_xml(client, api_key):
    r = client.post(
        f"{BASE}/requests.xml",
        data={"api_key": api_key, "service_code": "road_damage", "jurisdiction_id": "320500"},
    )
    assert r.status_code == 400
    root = xml(r)
    assert root.tag == "errors" and root.findtext("error/code") == "400"
    r = client.post(
        f"{BASE}/requests.json",
        data={"api_key": api_key, "service_code": "road_damage", "jurisdiction_id": "330400",
              "lat": "31.30", "long": "120.62", "description": "x"},
    )  # fmt: skip
    assert r.status_code == 400 and "所选位置不在嘉兴市范围内" in r.json()[0]["description"]
