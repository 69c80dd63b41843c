from tongban.regions import service


def test_cities_and_jurisdictions(client):
    cities = client.get("/api/v1/cities").json()
    assert len(cities) == 41
    assert {"code": "320500", "name": "苏州市", "jurisdiction_code": "320000"} in cities
    js = client.get("/api/v1/jurisdictions").json()
    assert [j["short_name"] for j in js] == ["沪", "苏", "浙", "皖"]
    assert len(client.get("/api/v1/cities", params={"jurisdiction": "340000"}).json()) == 16


def test_every_jurisdiction_and_city_has_each_authority(session):
    for city in service.list_cities(session):
        types = {a.type for a in service.list_authorities(session, city_code=city.code)}
        assert {
            "public_security",
            "human_resources",
            "medical_insurance",
            "market_regulation",
            "civil_affairs",
            "housing_fund",
            "real_estate",
            "health",
            "transport",
        } <= types
    prov = service.list_authorities(session, jurisdiction_code="320000", type_="public_security")
    assert {a.name for a in prov} >= {"江苏省公安厅", "苏州市公安局"}
    a = service.competent_authority(session, "public_security", "province", "310000", None)
    assert a.name == "上海市公安局"


def test_demonstration_zone(client):
    names = {d["name"] for d in client.get("/api/v1/districts").json() if d["demonstration_zone"]}
    assert names == {"青浦区", "吴江区", "嘉善县"}


def test_health_and_openapi(client):
    assert client.get("/healthz").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/cases" in spec["paths"] and "/api/v1/cities" in spec["paths"]
