"""A matter's guide (办事指南): published facts where guides.json has them, the general rule
marked as such where it has none, the steps by handling mode, the office once chosen."""

from tongban.catalog import guide
from tongban.catalog.domain import read_catalogue


def test_known_fee_and_hotline_are_facts_not_defaults():
    g = guide.build("YRD-GA-0006", "public_security", ["proxy"], 7)
    assert "60 元" in g.fee.text and not g.fee.default
    assert g.hotline.text.startswith("12367") and not g.hotline.default
    assert g.hours.default and g.hours.text == guide.DEFAULT_HOURS


def test_silent_matter_falls_back_to_marked_general_rules():
    g = guide.build("YRD-SJ-0001", "civil_affairs", ["online", "proxy"], 3)
    assert g.fee == guide.Fact(guide.DEFAULT_FEE, True)
    assert g.hotline == guide.Fact(guide.DEFAULT_HOTLINE, True)
    assert g.where.default and "选择办理城市" in g.where.text
    assert g.steps[0].startswith("在线提交") and g.time_limit_days == 3


def test_sector_hotline_and_window_steps_and_chosen_office():
    g = guide.build("YRD-GJJ-0003", "housing_fund", ["proxy"], 5, office="苏州市住房公积金管理中心")
    assert g.hotline.text.startswith("12329") and not g.hotline.default
    assert g.steps[0].startswith("窗口递交")
    assert g.where.text.startswith("苏州市住房公积金管理中心") and not g.where.default


def test_guide_data_names_only_catalogue_matters():
    codes = {m["code"] for m in read_catalogue()}
    assert set(guide.popular_codes()) <= codes
    assert set(guide._data()["matters"]) <= codes
