"""The report form's map: drawn by the app from the region's own outlines (inline SVG,
no tile service), and a point picked with a city must lie inside that city's boundary."""

from __future__ import annotations

import re

import pytest
import shapely

from integration.tickets.test_views import login, report_form
from tongban.errors import ValidationFailed
from tongban.tickets import geo, reportmap

from builders import BORDER_WUJIANG_JIASHAN, make_resident


def test_the_form_draws_every_city_from_the_shipped_outlines(client, session):
    login(client, make_resident(session, city="320500"))
    page = client.get("/tickets/report")
    assert page.status_code == 200
    svg = page.text.split('<svg id="report-map"', 1)[1].split("</svg>", 1)[0]
    index = geo.cached(None)
    codes = set(re.findall(r'data-code="(\d+)" data-kind="city"', svg))
    assert codes == {a.code for a in index.cities}
    # The resident's own city is the one highlighted; nothing is fetched from elsewhere.
    assert re.search(r'class="area city chosen" d="[^"]+" data-code="320500"', svg)
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert '<script src="/static/tickets-map.js"' in page.text


def test_the_svg_units_turn_back_into_a_point_inside_the_city():
    """What the page's script does with a click: km in the drawing → lon/lat."""
    index = geo.cached(None)
    m = reportmap.report_map(index)
    suzhou = next(s for s in m.shapes if s.code == "320500")
    ring = [tuple(map(float, p.split(","))) for p in suzhou.d[1:-1].split("Z")[0].split("L")]
    cx, cy = shapely.Polygon(ring).representative_point().coords[0]
    lon = cx * 1000 / m.m_per_deg_lon + m.lon0
    lat = -cy * 1000 / m.m_per_deg_lat + m.lat0
    placed = index.locate(lon, lat)
    assert placed is not None and placed.city_code == "320500"


def test_a_point_outside_the_chosen_city_is_a_422_naming_the_field(client, session):
    csrf = login(client, make_resident(session, city="320500"))
    # 杭州 coordinates reported as being in 苏州: refused, nothing created.
    r = client.post(
        "/tickets/report",
        data=report_form(csrf, lat="30.26", lon="120.16", city_code="320500"),
    )
    assert r.status_code == 422
    assert "所选位置不在苏州市范围内" in r.text
    assert 'id="lat" name="lat"' in r.text and 'aria-describedby="lat-error"' in r.text
    # The same point with the city it lies in (the border point lies in 苏州) goes through.
    lat, lon = BORDER_WUJIANG_JIASHAN
    ok = client.post(
        "/tickets/report",
        data=report_form(csrf, lat=str(lat), lon=str(lon), city_code="320500"),
        follow_redirects=False,
    )
    assert ok.status_code == 303, ok.text


def test_check_point_in_city_directly():
    index = geo.cached(None)
    reportmap.check_point_in_city(index, 31.23, 121.47, "310000")  # 上海 in 上海
    reportmap.check_point_in_city(index, None, None, "310000")  # no point: nothing to check
    with pytest.raises(ValidationFailed) as e:
        reportmap.check_point_in_city(index, 30.26, 120.16, "310000")  # 杭州 as 上海
    assert e.value.status == 422 and e.value.errors[0].field == "lat"
