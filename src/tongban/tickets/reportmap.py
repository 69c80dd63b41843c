"""The work-order report form's map: the region's own city (and demonstration-zone
district) outlines drawn as inline SVG by the app — no tile service, no CDN — and the
check that a point picked on it lies inside the city the report names.

The SVG's user units are kilometres in geo's local projection (x east, y south), so the
page's script turns a click back into longitude/latitude with the two scale factors it
is given (data attributes), and the server locates the point with the same polygons.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import shapely

from tongban.errors import FieldError, ValidationFailed
from tongban.tickets import geo

#: Outline simplification, in metres (the drawing is a picking aid, not a survey).
SIMPLIFY_M = 300.0


@dataclass(frozen=True)
class Shape:
    kind: str  # city | district
    code: str
    name: str
    d: str  # SVG path data, in km


@dataclass(frozen=True)
class ReportMap:
    view_box: str
    shapes: tuple[Shape, ...]
    m_per_deg_lon: float = geo.M_PER_DEG_LON
    m_per_deg_lat: float = geo.M_PER_DEG_LAT
    lon0: float = geo.LON0
    lat0: float = geo.LAT0


def _path(geom: object) -> str:
    parts = []
    polys = getattr(geom, "geoms", [geom])
    for poly in polys:
        if not isinstance(poly, shapely.Polygon):
            continue
        for ring in [poly.exterior, *poly.interiors]:
            pts = [f"{x / 1000:.2f},{-y / 1000:.2f}" for x, y in ring.coords[:-1]]
            if pts:
                parts.append("M" + "L".join(pts) + "Z")
    return "".join(parts)


@lru_cache(maxsize=4)
def _build(index: geo.RegionIndex) -> ReportMap:
    shapes = tuple(
        Shape(a.kind, a.code, a.name, _path(a.geom.simplify(SIMPLIFY_M)))
        for a in [*index.cities, *index.districts]
    )
    minx, miny, maxx, maxy = shapely.union_all([a.geom for a in index.cities]).bounds
    pad = 5.0
    box = (minx / 1000 - pad, -maxy / 1000 - pad, (maxx - minx) / 1000 + 2 * pad)
    height = (maxy - miny) / 1000 + 2 * pad
    return ReportMap(f"{box[0]:.1f} {box[1]:.1f} {box[2]:.1f} {height:.1f}", shapes)


def report_map(index: geo.RegionIndex) -> ReportMap:
    """The map of `index`'s areas (built once per index)."""
    return _build(index)


def point_outside_city(
    index: geo.RegionIndex, lat: float | None, lon: float | None, city_code: str | None
) -> FieldError | None:
    """What is wrong when a point given together with a city lies outside that city's
    boundary (point-in-polygon on the same outlines the map draws), naming `lat`; None
    when it lies inside, or when there is no point, no city or an unknown city (an
    unknown city is the service's own refusal)."""
    if lat is None or lon is None or not city_code:
        return None
    city = index.area(city_code)
    if city is None or city.kind != "city":
        return None
    x = (lon - geo.LON0) * geo.M_PER_DEG_LON
    y = (lat - geo.LAT0) * geo.M_PER_DEG_LAT
    if shapely.intersects_xy(city.geom, x, y):
        return None
    return FieldError("lat", f"该经纬度不在{city.name}边界内：请在地图上重新选点，或改选所在城市")


def outside_city_detail(index: geo.RegionIndex, city_code: str) -> str:
    """The headline of the refusal of a point outside `city_code`."""
    city = index.area(city_code)
    return f"所选位置不在{city.name if city else city_code}范围内"


def check_point_in_city(
    index: geo.RegionIndex, lat: float | None, lon: float | None, city_code: str | None
) -> None:
    """A point picked together with a city must lie inside that city: a 422
    `outside-city` naming `lat` if not (every channel's intake runs this check)."""
    wrong = point_outside_city(index, lat, lon, city_code)
    if wrong is None:
        return
    assert city_code is not None
    raise ValidationFailed(
        outside_city_detail(index, city_code), type="outside-city", errors=[wrong]
    )
