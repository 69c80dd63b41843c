"""The pure rules of purpose-bound evidence: the catalogue, where data lives, the
provider's decision and minimisation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

from tongban.evidence import domain
from tongban.evidence.domain import Ask, ConsentSnapshot, Reason
from tongban.regions.domain import AuthorityType

CAT = domain.catalogue()
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
SUBJECT = "340102199003071234"


def _matters() -> dict[str, dict]:
    path = Path(str(resources.files("tongban.catalog") / "data" / "matters.json"))
    return {m["code"]: m for m in json.loads(path.read_text(encoding="utf-8"))}


def ask(**kw) -> Ask:
    base = dict(
        kind="social_insurance",
        purpose="housing_fund_transfer",
        subject=SUBJECT,
        subject_type="resident",
        case_number="320500202611230000001",
        matter_code="YRD-GJJ-0001",
        matter_authority_type="housing_fund",
        requester_type="housing_fund",
        requested_at=T0,
    )
    base.update(kw)
    return Ask(**base)


def consent(**kw) -> ConsentSnapshot:
    base = dict(
        case_number="320500202611230000001",
        subject=SUBJECT,
        scopes=frozenset({"household", "social_insurance"}),
        given_at=T0 - timedelta(days=1),
        channel="online",
    )
    base.update(kw)
    return ConsentSnapshot(**base)


# --- the catalogue is consistent with the matters and the authority types ---------------


def test_catalogue_has_the_three_kinds_with_chinese_labels() -> None:
    assert {k: v.label for k, v in CAT.kinds.items()} == {
        "household": "户籍证明",
        "social_insurance": "社会保险缴费记录",
        "licence_status": "电子证照状态",
    }


def test_every_purpose_names_real_matters_and_authority_types() -> None:
    matters = _matters()
    types = {t.value for t in AuthorityType}
    for p in CAT.purposes.values():
        assert p.matters or p.authority_types, p.code
        assert p.matters <= matters.keys(), (p.code, p.matters - matters.keys())
        assert p.authority_types <= types, p.code
        assert p.label and all("\u4e00" <= ch <= "\u9fff" or ch in "、（）" for ch in p.label)
    for k in CAT.kinds.values():
        assert k.requester_types <= types, k.code


def test_housing_fund_transfer_may_ask_for_social_insurance_records() -> None:
    purposes = CAT.purposes_for("social_insurance", "YRD-GJJ-0001", "housing_fund")
    assert [p.label for p in purposes] == ["住房公积金异地转移接续"]
    kinds = CAT.kinds_for_matter("YRD-GJJ-0001", "housing_fund")
    assert [k.code for k in kinds] == ["household", "social_insurance"]
    # An authority-type purpose covers every matter of that type.
    assert [k.code for k in CAT.kinds_for_matter("YRD-SJ-0001", "market_regulation")] == [
        "household",
        "licence_status",
    ]
    # … but only kinds that exist for the subject: an enterprise has no 户籍.
    assert [
        k.code for k in CAT.kinds_for_matter("YRD-SJ-0001", "market_regulation", "enterprise")
    ] == ["licence_status"]
    assert CAT.kinds_for_matter("YRD-SW-0002", "tax") == []


def test_a_catalogue_naming_an_unknown_kind_or_widening_a_kind_is_rejected() -> None:
    raw = json.loads(
        Path(str(resources.files("tongban.evidence") / "data" / "evidence.json")).read_text(
            encoding="utf-8"
        )
    )
    bad = json.loads(json.dumps(raw))
    bad["purposes"][0]["kinds"] = ["dna_sample"]
    with pytest.raises(ValueError, match="unknown kinds"):
        domain.parse_catalogue(bad)
    wide = json.loads(json.dumps(raw))
    wide["purposes"][0]["fields"] = {"household": ["ethnicity"]}
    with pytest.raises(ValueError, match="widens"):
        domain.parse_catalogue(wide)


# --- where the data lives --------------------------------------------------------------


def test_home_jurisdiction_from_id_number_and_credit_code() -> None:
    assert domain.home_jurisdiction("340102199003071234") == "340000"
    assert domain.home_jurisdiction("310101198511123572") == "310000"
    assert domain.home_jurisdiction("91320500MA1XK3P2YX", "enterprise") == "320000"
    assert domain.home_jurisdiction("00abc") is None
    assert domain.home_jurisdiction("001234199001011234") is None


# --- the provider's decision --------------------------------------------------------------


def test_a_valid_request_passes_every_check() -> None:
    assert domain.decide(CAT, ask(), consent()) is None


@pytest.mark.parametrize(
    "a, c, reason",
    [
        (ask(kind="dna"), consent(), Reason.UNKNOWN_KIND),
        (ask(kind="household", subject_type="enterprise"), consent(), Reason.SUBJECT_TYPE),
        (ask(requester_type=None), consent(), Reason.UNKNOWN_AUTHORITY),
        (ask(requester_type="tax"), consent(), Reason.AUTHORITY_TYPE),
        (ask(purpose="curiosity"), consent(), Reason.UNKNOWN_PURPOSE),
        (ask(purpose="qualification_check"), consent(), Reason.PURPOSE_KIND),
        (ask(purpose="social_insurance_transfer"), consent(), Reason.PURPOSE_MATTER),
        (ask(), None, Reason.NO_CONSENT),
        (ask(), consent(subject="340102199003070000"), Reason.CONSENT_SUBJECT),
        (ask(), consent(case_number="other"), Reason.CONSENT_CASE),
        (ask(), consent(scopes=frozenset({"household"})), Reason.CONSENT_SCOPE),
        (ask(), consent(given_at=T0 + timedelta(seconds=1)), Reason.CONSENT_LATE),
    ],
)
def test_each_failed_check_has_its_own_reason(a, c, reason) -> None:
    refusal = domain.decide(CAT, a, c)
    assert refusal is not None and refusal.reason is reason
    assert refusal.text  # a Chinese sentence the requester and the resident see


def test_a_matter_unknown_to_the_provider_fits_only_purposes_that_name_it() -> None:
    assert domain.decide(CAT, ask(matter_authority_type=None), consent()) is None
    refusal = domain.decide(
        CAT,
        ask(kind="household", purpose="marriage_registration", requester_type="civil_affairs"),
        consent(),
    )
    assert refusal is not None and refusal.reason is Reason.PURPOSE_MATTER


def test_consent_snapshot_round_trips_through_a_payload() -> None:
    c = consent()
    assert ConsentSnapshot.from_payload(json.loads(json.dumps(c.as_payload()))) == c
    assert ConsentSnapshot.from_payload(None) is None


# --- minimisation ----------------------------------------------------------------------------


def test_minimise_returns_only_the_kinds_fields() -> None:
    record = {
        "name": "王芳",
        "insured_city": "合肥市",
        "status": "正常参保",
        "months_paid": 120,
        "monthly_base": 12000,
        "medical_balance": 800,
    }
    out = domain.minimise(CAT, "social_insurance", "housing_fund_transfer", record)
    assert out == {
        "name": "王芳",
        "insured_city": "合肥市",
        "status": "正常参保",
        "months_paid": 120,
    }


def test_a_purpose_can_narrow_what_a_kind_returns() -> None:
    record = {
        "name": "王芳",
        "address": "合肥市示范路1号",
        "registration_authority": "派出所",
        "registered_since": "2008-09-01",
        "household_type": "家庭户",
        "ethnicity": "汉族",
    }
    full = domain.minimise(CAT, "household", "housing_fund_transfer", record)
    assert "ethnicity" not in full and "registered_since" in full
    narrow = domain.minimise(CAT, "household", "school_transfer", record)
    assert set(narrow) == {"name", "address", "registration_authority"}


def test_list_items_keep_only_item_fields() -> None:
    record = {
        "name": "王芳",
        "licences": [{"type_name": "驾驶证", "identifier": "X", "status": "有效", "secret": 1}],
    }
    out = domain.minimise(CAT, "licence_status", "qualification_check", record)
    assert out == {
        "name": "王芳",
        "licences": [{"type_name": "驾驶证", "identifier": "X", "status": "有效"}],
    }


def test_normalise_scopes_keeps_catalogue_order_and_reports_unknown() -> None:
    known, unknown = domain.normalise_scopes(CAT, [" social_insurance", "household", "x", ""])
    assert known == ["household", "social_insurance"] and unknown == ["x"]
