"""The catalogue over the JSON API and as pages, and its use cases against a real database
(seeded by the shared fixtures with `load_catalogue`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tongban.catalog import service
from tongban.catalog.domain import CatalogueInvalid, read_catalogue
from tongban.catalog.models import Matter, MatterImplementation, MatterMaterial
from tongban.errors import NotFound, ValidationFailed
from tongban.regions import service as regions

CATALOGUE = read_catalogue()
PROBLEM = "application/problem+json"


# --------------------------------------------------------------------------- JSON API


def test_list_all_matters(client):
    r = client.get("/api/v1/matters")
    assert r.status_code == 200
    body = r.json()
    assert [m["code"] for m in body] == sorted(m["code"] for m in CATALOGUE)
    first = body[0]
    assert set(first) == {"code", "name", "subjects", "category", "authority_type",
                          "authority_level", "modes", "time_limit_days"}  # fmt: skip


def test_search_by_name_code_and_category(client):
    by_name = client.get("/api/v1/matters", params={"q": "公积金"}).json()
    assert by_name and all("公积金" in m["name"] or "公积金" in m["category"] for m in by_name)
    assert "YRD-GJJ-0001" in {m["code"] for m in by_name}
    by_code = client.get("/api/v1/matters", params={"q": "yrd-sj-0001"}).json()
    assert [m["code"] for m in by_code] == ["YRD-SJ-0001"]
    by_category = client.get("/api/v1/matters", params={"q": "婚姻登记"}).json()
    assert {m["code"] for m in by_category} == {"YRD-MZ-0001", "YRD-MZ-0002"}
    assert client.get("/api/v1/matters", params={"q": "%"}).json() == []


def test_filter_by_mode_authority_type_and_subject(client):
    joint = client.get("/api/v1/matters", params={"mode": "joint"}).json()
    expected = {m["code"] for m in CATALOGUE if "joint" in m["modes"]}
    assert {m["code"] for m in joint} == expected and len(expected) >= 3
    online_rs = client.get(
        "/api/v1/matters", params={"mode": "online", "authority_type": "human_resources"}
    ).json()
    assert online_rs and all(
        "online" in m["modes"] and m["authority_type"] == "human_resources" for m in online_rs
    )
    firms = client.get("/api/v1/matters", params={"subject": "法人"}).json()
    assert "YRD-SJ-0001" in {m["code"] for m in firms}
    assert all("法人" in m["subjects"] for m in firms)


def test_unknown_filter_value_is_a_422_problem(client):
    r = client.get("/api/v1/matters", params={"mode": "by_pigeon"})
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["errors"][0]["field"] == "mode"


def test_get_one_matter_with_materials_and_form_schema(client):
    r = client.get("/api/v1/matters/YRD-SJ-0001")
    assert r.status_code == 200
    m = r.json()
    assert m["name"] == "企业设立登记" and m["result_licence_type"] == "business_licence"
    assert m["modes"] == ["online", "proxy"] and m["time_limit_days"] == 3 and m["active"]
    codes = [x["code"] for x in m["materials"]]
    assert codes == [
        x["code"] for x in next(i for i in CATALOGUE if i["code"] == "YRD-SJ-0001")["materials"]
    ]
    id_card = next(x for x in m["materials"] if x["code"] == "legal_rep_id")
    assert id_card["licence_type"] == "resident_id_card" and id_card["required"] is True
    assert m["form_schema"]["type"] == "object"
    assert "company_name" in m["form_schema"]["required"]
    assert m["form_schema"]["properties"]["company_name"]["title"] == "企业名称"


def test_joint_matter_names_its_partners(client):
    m = client.get("/api/v1/matters/YRD-SJ-0006").json()
    assert "joint" in m["modes"] and m["joint_authority_types"] == ["market_regulation", "tax"]


def test_unknown_matter_is_a_404_problem_in_chinese(client):
    r = client.get("/api/v1/matters/NO-SUCH-1")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["type"].endswith("/unknown-matter")
    assert body["detail"] == "事项编码 NO-SUCH-1 不存在"


def test_catalogue_is_in_the_openapi_description(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/matters" in paths and "/api/v1/matters/{code}" in paths


# --------------------------------------------------------------------------- pages


def test_browse_page_lists_matters_with_mode_labels(client):
    r = client.get("/matters")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "企业设立登记" in r.text and "全程网办" in r.text and "多地联办" in r.text
    assert "个工作日" in r.text and 'href="/matters/YRD-SJ-0001"' in r.text


def test_browse_page_filters(client):
    r = client.get("/matters", params={"q": "驾驶证", "mode": "online"})
    assert "机动车驾驶证补领、换领" in r.text and "企业设立登记" not in r.text
    r = client.get("/matters", params={"authority_type": "civil_affairs"})
    assert "婚姻登记" in r.text and "企业设立登记" not in r.text
    r = client.get("/matters", params={"q": "不存在的事项"})
    assert "没有找到符合条件的事项" in r.text
    # A made-up filter is ignored, not an error.
    assert client.get("/matters", params={"mode": "x"}).status_code == 200


def test_guide_page(client):
    r = client.get("/matters/YRD-MZ-0001")
    assert r.status_code == 200
    text = r.text
    assert "内地居民婚姻登记（结婚登记）" in text and "《婚姻登记条例》" in text
    assert "民政" in text and "多地联办" in text and "1 个工作日" in text
    assert "可用电子证照免提交" in text
    assert 'href="/apply/YRD-MZ-0001"' in text
    assert "上海市" in text and "已开通" in text


def test_guide_page_for_unknown_matter_is_a_chinese_404_page(client):
    r = client.get("/matters/NO-SUCH-1", headers={"accept": "text/html"})
    assert r.status_code == 404 and "事项编码 NO-SUCH-1 不存在" in r.text


def test_form_macro_renders_labelled_inputs_with_errors(app):
    env = app.state.templates.env
    template = env.from_string(
        '{% from "catalog/form_macros.html" import render_form_fields %}'
        "{{ render_form_fields(schema, values, errors) }}"
    )
    schema = next(i for i in CATALOGUE if i["code"] == "YRD-RS-0006")["form_schema"]
    html = template.render(
        schema=schema,
        values={"last_employer": "<b>某公司</b>", "education": "本科", "want_training": True},
        errors={"separation_date": "“离职日期”为必填项"},
    )
    assert '<label for="f_last_employer">原工作单位' in html and "（必填）" in html
    assert 'name="last_employer"' in html and "&lt;b&gt;某公司&lt;/b&gt;" in html
    assert 'type="date" id="f_separation_date"' in html
    assert 'aria-invalid="true"' in html and "“离职日期”为必填项" in html
    assert '<option value="本科" selected>' in html
    assert 'type="checkbox" id="f_want_training" name="want_training" value="true" checked' in html
    assert html.count('<div class="field') == len(schema["properties"])
    # The apply page's error keys ("form_data.<name>") work too, and values may be None.
    html = template.render(schema=schema, values=None, errors={"form_data.last_employer": "错了"})
    assert "错了" in html


# --------------------------------------------------------------------------- use cases


def test_every_jurisdiction_implements_every_matter(session):
    jurisdictions = regions.list_jurisdictions(session)
    count = session.scalar(select(func.count()).select_from(MatterImplementation))
    assert count == len(CATALOGUE) * len(jurisdictions) == len(CATALOGUE) * 4
    matter = service.get_matter(session, "YRD-RS-0001")
    assert service.time_limit_for(session, matter, "320000") == 45


def test_load_catalogue_is_idempotent(session):
    def counts():
        return tuple(
            session.scalar(select(func.count()).select_from(t))
            for t in (Matter, MatterMaterial, MatterImplementation)
        )

    before = counts()
    material_ids = {m.id for m in session.scalars(select(MatterMaterial))}
    assert service.load_catalogue(session) == len(CATALOGUE)
    assert counts() == before
    assert {m.id for m in session.scalars(select(MatterMaterial))} == material_ids


def test_load_catalogue_updates_and_deactivates(session, tmp_path: Path):
    items = read_catalogue()
    items[0]["name"] = "户口迁移（改名）"
    items[0]["materials"] = items[0]["materials"][:2]
    dropped = items.pop()["code"]
    path = tmp_path / "matters.json"
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")

    assert service.load_catalogue(session, path) == len(CATALOGUE) - 1
    first = service.get_matter(session, items[0]["code"])
    assert first.name == "户口迁移（改名）" and len(first.materials) == 2
    assert dropped not in {m.code for m in service.list_matters(session)}
    assert service.get_matter(session, dropped).active is False


def test_load_catalogue_refuses_a_broken_file(session, tmp_path: Path):
    items = read_catalogue()
    items[0]["authority_type"] = "police"
    path = tmp_path / "matters.json"
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CatalogueInvalid) as e:
        service.load_catalogue(session, path)
    assert any("police" in p for p in e.value.problems)


def test_jurisdiction_time_limit_and_disabled_implementation(session):
    matter = service.get_matter(session, "YRD-SJ-0001")
    impl = session.scalar(
        select(MatterImplementation).where(
            MatterImplementation.matter_code == matter.code,
            MatterImplementation.jurisdiction_code == "330000",
        )
    )
    impl.time_limit_days = 2
    session.flush()
    assert service.time_limit_for(session, matter, "330000") == 2
    assert service.time_limit_for(session, matter, "320000") == 3
    assert service.time_limit_for(session, matter, "999999") == 3  # no row: the standard

    impl.enabled = False
    session.flush()
    with pytest.raises(ValidationFailed) as e:
        service.time_limit_for(session, matter, "330000")
    assert e.value.type == "matter-not-implemented" and "企业设立登记" in e.value.detail


def test_get_unknown_matter(session):
    with pytest.raises(NotFound) as e:
        service.get_matter(session, "NOPE")
    assert e.value.type == "unknown-matter" and e.value.status == 404


def test_validate_form(session):
    matter = service.get_matter(session, "YRD-GJJ-0002")
    data = {"proof_purpose": "异地贷款", "loan_city": "合肥"}
    assert service.validate_form(matter, data) == data
    with pytest.raises(ValidationFailed) as e:
        service.validate_form(matter, {"proof_purpose": "胡乱", "account_number": "12"})
    assert e.value.type == "form-invalid" and e.value.detail == "申请表填写有误"
    assert e.value.errors == [
        {"field": "form_data.account_number", "message": "“个人账号”格式不正确"},
        {"field": "form_data.proof_purpose",
         "message": "“证明用途”应为以下之一：异地贷款、购房资格审核、其他"},
    ]  # fmt: skip
