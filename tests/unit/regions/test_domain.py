from pathlib import Path

from tongban.regions.domain import (
    AuthorityType,
    authority_name,
    is_municipality,
    is_valid_division_code,
    read_cities,
    read_districts,
    short_name,
)

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def test_packaged_reference_data_has_41_cities_in_4_jurisdictions():
    cities = read_cities()
    assert len(cities) == 41
    assert {c.jurisdiction_code for c in cities} == {"310000", "320000", "330000", "340000"}
    assert all(is_valid_division_code(c.code) for c in cities)
    assert all(c.code[:2] == c.jurisdiction_code[:2] for c in cities)
    assert len({c.code for c in cities}) == 41


def test_packaged_copy_matches_shared_reference_data():
    if not SHARED.is_dir():  # the shared folder sits beside the repository in CI
        return
    assert read_cities() == read_cities(SHARED)
    assert read_districts() == read_districts(SHARED)


def test_demonstration_zone_districts_belong_to_their_cities():
    districts = read_districts()
    assert {d.name for d in districts} == {"青浦区", "吴江区", "嘉善县"}
    city_codes = {c.code for c in read_cities()}
    assert all(d.city_code in city_codes and d.code[:2] == d.city_code[:2] for d in districts)


def test_names_and_abbreviations():
    assert (
        authority_name("苏州市", AuthorityType.PUBLIC_SECURITY, provincial=False) == "苏州市公安局"
    )
    assert (
        authority_name("江苏省", AuthorityType.PUBLIC_SECURITY, provincial=True) == "江苏省公安厅"
    )
    assert short_name("340000", "安徽省") == "皖"
    assert is_municipality("310000", ["310000"])
    assert not is_municipality("320000", ["320100", "320200"])
