"""Finding and doing: the home page's search box and 常办事项, the catalogue's city filter,
and a matter's guide for a chosen city."""

from __future__ import annotations

from sqlalchemy import select

from tongban.catalog.guide import popular_codes
from tongban.catalog.models import MatterImplementation


def test_home_page_has_a_search_box_and_popular_matters(client):
    text = client.get("/").text
    assert 'action="/matters" role="search"' in text and 'name="q"' in text
    assert "常办事项" in text
    for code in popular_codes()[:3]:
        assert f'href="/matters/{code}"' in text


def test_catalogue_filters_by_city_and_authority(client, session):
    # 江苏 closes 异地就医登记备案; a 苏州 reader no longer finds it, a 上海 one does.
    impl = session.scalar(
        select(MatterImplementation).where(
            MatterImplementation.matter_code == "YRD-YB-0001",
            MatterImplementation.jurisdiction_code == "320000",
        )
    )
    impl.enabled = False
    session.flush()
    params = {"authority_type": "medical_insurance"}
    suzhou = client.get("/matters", params={**params, "city": "320500"}).text
    shanghai = client.get("/matters", params={**params, "city": "310000"}).text
    assert 'href="/matters/YRD-YB-0001' not in suzhou
    assert 'href="/matters/YRD-YB-0002?city=320500"' in suzhou
    assert 'href="/matters/YRD-YB-0001?city=310000"' in shanghai
    assert "企业设立登记" not in shanghai
    assert '<option value="320500" selected>' in suzhou
    # An unknown city is ignored, not an error.
    assert client.get("/matters", params={"city": "999999"}).status_code == 200


def test_guide_gives_fee_place_hours_hotline_steps_and_time_limit(client):
    text = client.get("/matters/YRD-GA-0006", params={"city": "320500"}).text
    assert "办事指南" in text and "往来港澳通行证 60 元" in text and "12367" in text
    assert "苏州市公安局" in text  # the competent office of the chosen city
    assert "办公时间" in text and "通用规定，以办理地公布为准" in text
    assert "办理流程" in text and "窗口递交" in text and "个工作日" in text
    plain = client.get("/matters/YRD-SJ-0001").text
    assert "不收费" in plain and "选择办理城市后显示具体部门" in plain
