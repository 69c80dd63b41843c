"""The bundles as data: the shipped file fits the shipped catalogue, and the checks catch
what would break a submission (a required matter field left empty, a result taken from a
later step, a material no earlier step produces, a cycle …). No database."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tongban.catalog.domain import read_catalogue
from tongban.lifeevents import definitions as d
from tongban.lifeevents.checks import catalogue_problems
from tongban.lifeevents.definitions import MaterialSource


def _matters() -> dict[str, d.MatterInfo]:
    return {
        m["code"]: d.MatterInfo(
            m["code"],
            m["name"],
            tuple(m["subjects"]),
            tuple(m["modes"]),
            m["form_schema"],
            tuple(
                d.MaterialInfo(x["code"], x["name"], x["required"], x["licence_type"])
                for x in m["materials"]
            ),
            m["result_licence_type"],
        )
        for m in read_catalogue()
    }


MATTERS = _matters()


def _raw() -> dict[str, Any]:
    return json.loads(d.data_path().read_text(encoding="utf-8"))


def _problems(raw: dict[str, Any]) -> list[str]:
    try:
        bundles = d.parse(raw)
    except d.BundlesInvalid as e:
        return e.problems
    return catalogue_problems(bundles, MATTERS)


def _newborn(raw: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in raw["bundles"] if b["code"] == "newborn")


def test_the_shipped_bundles_fit_the_shipped_catalogue():
    bundles = d.read_bundles()
    assert [b.code for b in bundles] == ["newborn", "business", "retirement", "hukou_migration"]
    assert catalogue_problems(bundles, MATTERS) == []
    newborn = bundles[0]
    assert [s.matter for s in newborn.steps] == [
        "YRD-WJ-0004",  # 出生医学证明
        "YRD-GA-0007",  # 出生登记（落户）
        "YRD-YB-0004",  # 医保参保
        "YRD-RS-0002",  # 社会保障卡申领
        "YRD-WJ-0005",  # 预防接种
    ]
    # The 出生医学证明 licence of step 1 is the 免提交 material of 户口登记.
    assert newborn.step("hukou").materials == {"birth_certificate": "birth_certificate"}
    assert MATTERS["YRD-WJ-0004"].result_licence_type == "birth_certificate"


def test_a_shared_field_is_asked_once_and_fills_every_matter_that_needs_it():
    newborn = d.read_bundles()[0]
    users = [s.key for s in newborn.steps if d.FromField("child_name") in s.form.values()]
    assert users == ["birth_certificate", "hukou", "medical_insurance", "vaccination"]
    values = {
        "child_name": "张小宝",
        "birth_date": "2026-11-20",
        "hukou_address": "南京市玄武区某路1号",
    }
    form = d.step_form(
        newborn.step("medical_insurance"),
        values,
        {"hukou": "南京市"},
        {"hukou": "320100202612010000001（南京市公安局办件）"},
    )
    assert form == {
        "insured_name": "张小宝",
        "birth_date": "2026-11-20",
        "insured_city": "南京市",
        "household_ref": "320100202612010000001（南京市公安局办件）",
    }


def test_places_follow_the_choice_of_the_parent():
    hukou = d.read_bundles()[0].places["hukou"]
    assert hukou.city_field({"hukou_follows": "随父亲落户"}) == "father_hukou_city"
    assert hukou.city_field({"hukou_follows": "随母亲落户"}) == "mother_hukou_city"
    assert hukou.city_field({}) is None


def test_steps_with_when_are_handled_only_when_ticked():
    migration = d.read_bundles()[3]
    keys = [s.key for s in d.included(migration, {"has_driving_licence": True})]
    assert keys == ["migration", "driving_licence"]


def test_material_plan_prefers_the_earlier_result_then_the_wallet_then_an_upload():
    newborn = d.read_bundles()[0]
    hukou = newborn.step("hukou")
    matter = MATTERS["YRD-GA-0007"]
    plan = {
        p.material.code: p.source
        for p in d.material_plan(hukou, matter, {"resident_id_card"}, set())
    }
    assert plan == {
        "birth_certificate": MaterialSource.RESULT,  # will come from step 1
        "id_card": MaterialSource.WALLET,
        "household_register": MaterialSource.NONE,
        "marriage_certificate": MaterialSource.NONE,
    }
    assert [m.code for m in d.missing(d.material_plan(hukou, matter, set(), set()))] == [
        "id_card",
        "household_register",
    ]
    uploaded = d.material_plan(hukou, matter, set(), {"id_card", "household_register"})
    assert d.missing(uploaded) == []
    # When the step starts, the earlier licence must be here to stand in for the material.
    later = d.material_plan(hukou, matter, set(), set(), {"birth_certificate": False})
    assert later[0].source is MaterialSource.NONE and not later[0].required_missing


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda b: b["steps"][1]["form"].pop("hukou_address"), "'hukou_address' is not filled"),
        (lambda b: b["steps"][1]["form"].update(sex="child_name"), "does not fit"),
        (
            lambda b: b["steps"][0]["form"].update(birth_place={"result": "hukou"}),
            "not an earlier step",
        ),
        (
            lambda b: b["steps"][2]["materials"].update(
                household_register={"result": "birth_certificate"}
            ),
            "produces 'birth_certificate', not 'household_register'",
        ),
        (lambda b: b["steps"][0]["after"].append("vaccination"), "cycle"),
        (lambda b: b["steps"][1].update(matter="YRD-SJ-0001"), "not for"),
        (lambda b: b["steps"][1].update(place="moon"), "unknown place"),
        (lambda b: b["steps"][1]["form"].update(sex={"value": "未知"}), "does not fit the matter"),
        (
            lambda b: b["form"]["properties"].update(extra={"type": "string", "title": "多余"}),
            "used by no step",
        ),
        (lambda b: b["places"]["hukou"]["cities"].pop("随父亲落户"), "must be"),
    ],
)
def test_a_broken_bundle_is_refused_with_the_reason(change, expected):
    raw = _raw()
    change(_newborn(raw))
    problems = _problems(raw)
    assert any(expected in p for p in problems), problems


def test_a_required_field_from_a_step_that_may_be_skipped_is_refused():
    raw = _raw()
    retirement = next(b for b in raw["bundles"] if b["code"] == "retirement")
    matters = copy.deepcopy(MATTERS)
    schema = copy.deepcopy(dict(matters["YRD-RS-0011"].form_schema))
    schema["required"] = [*schema["required"], "transfer_ref"]
    info = matters["YRD-RS-0011"]
    matters["YRD-RS-0011"] = d.MatterInfo(
        info.code, info.name, info.subjects, info.modes, schema, info.materials, None
    )
    problems = catalogue_problems(d.parse({"bundles": [retirement]}), matters)
    assert any("may not be handled" in p for p in problems), problems
