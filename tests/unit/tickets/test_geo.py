"""Routing geometry: the synthetic polygons, point location and border distance."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely

from tongban.regions.domain import read_cities, read_districts
from tongban.tickets import geo, geodata


@pytest.fixture(scope="module")
def index() -> geo.RegionIndex:
    return geo.load()


def test_every_city_and_district_of_the_reference_data_has_an_area(index):
    assert {a.code for a in index.cities} == {c.code for c in read_cities()}
    assert {a.code for a in index.districts} == {d.code for d in read_districts()}


def test_each_city_centre_lies_in_its_own_city(index):
    for code, (lon, lat) in geodata.CITY_CENTRES.items():
        p = index.locate(lon, lat, border_m=0)
        assert p is not None and p.city_code == code


def test_cities_do_not_overlap_and_districts_lie_in_their_city(index):
    total = sum(a.geom.area for a in index.cities)
    union = shapely.union_all([a.geom for a in index.cities]).area
    assert (total - union) / union < 1e-6
    for d in index.districts:
        city = index.area(d.city_code)
        assert city is not None
        assert d.geom.difference(city.geom).area / d.geom.area < 1e-4


def test_the_shipped_file_is_what_the_generator_builds():
    cities = [
        {"code": c.code, "name": c.name, "jurisdiction_code": c.jurisdiction_code}
        for c in read_cities()
    ]
    built = geo.areas_from_geojson(geodata.build(cities))
    shipped = geo.load()
    assert len(built) == len(shipped.cities) + len(shipped.districts)
    for a in built:
        other = shipped.area(a.code)
        assert other is not None
        assert a.geom.symmetric_difference(other.geom).area < 1.0  # m²


def test_a_point_near_the_wujiang_jiashan_border_is_joint(index):
    p = index.locate(120.815, 30.9615, border_m=500)
    assert p is not None
    assert (p.city_code, p.district_code, p.jurisdiction_code) == ("320500", "320509", "320000")
    assert p.joint
    (n,) = p.neighbours
    assert (n.jurisdiction_code, n.city_code) == ("330000", "330400")
    assert 100 < n.distance_m < 250


def test_the_same_point_with_a_shorter_border_distance_is_not_joint(index):
    p = index.locate(120.815, 30.9615, border_m=100)
    assert p is not None and not p.joint


def test_a_point_inside_a_city_is_not_joint_and_districts_outside_the_zone_are_none(index):
    p = index.locate(120.62, 31.30)
    assert p is not None and p.city_code == "320500" and p.district_code is None
    assert not p.joint


def test_the_tripoint_sees_both_other_jurisdictions(index):
    p = index.locate(120.901, 31.001, border_m=500)
    assert p is not None
    assert {n.jurisdiction_code for n in p.neighbours} | {p.jurisdiction_code} == {
        "310000",
        "320000",
        "330000",
    }


def test_points_outside_the_region_are_nowhere(index):
    assert index.locate(116.40, 39.90) is None  # 北京
    assert index.locate(126.0, 30.0) is None  # the East China Sea


def test_vectorised_lookup_agrees_with_single_lookups(index):
    rng = np.random.default_rng(7)
    lons = rng.uniform(117, 121, 200)
    lats = rng.uniform(29, 33, 200)
    many = index.city_codes_of(lons, lats)
    for lon, lat, code in zip(lons, lats, many, strict=True):
        one = index.locate(float(lon), float(lat), border_m=0)
        if code is not None:
            assert one is not None and one.city_code == code


def test_metric_distances_are_close_to_the_truth():
    # one degree of latitude is about 110.9 km at 31°N
    assert geo.metres_between(120.0, 30.5, 120.0, 31.5) == pytest.approx(110_870, rel=0.002)
    # 0.01° of longitude at 31°N is about 955 m
    assert geo.metres_between(120.0, 31.0, 120.01, 31.0) == pytest.approx(955, rel=0.005)


def test_real_geojson_replaces_the_synthetic_areas(tmp_path):
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "kind": "city",
                    "code": "999900",
                    "name": "测试市",
                    "jurisdiction_code": "990000",
                    "city_code": "999900",
                },
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[120, 30], [121, 30], [121, 31], [120, 31], [120, 30]]],
                },
            }
        ],
    }
    path = tmp_path / "real.geojson"
    path.write_text(json.dumps(fc), "utf-8")
    idx = geo.load(path)
    p = idx.locate(120.5, 30.5)
    assert p is not None and p.city_code == "999900"
    with pytest.raises(ValueError, match="lacks"):
        geo.areas_from_geojson({"type": "FeatureCollection", "features": [{"properties": {}}]})
