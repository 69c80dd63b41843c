"""Builds the SYNTHETIC, APPROXIMATE area polygons shipped in data/regions.geojson.

There is no map data on this platform's build machines, so the shipped polygons are made
from what is known without one:
- each of the 41 cities is the Voronoi cell of its approximate centre (city-hall
  coordinates to about 0.05°), computed in a local metric projection and clipped to a
  hand-drawn outline of the four provinces (about 60 vertices, coast and inland borders,
  errors of 5–20 km);
- the three districts of the demonstration zone (青浦, 吴江, 嘉善) are hand-drawn
  polygons (errors of 1–5 km) sharing exact vertices along their borders; they override
  the Voronoi cells, so the 沪–苏–浙 borders inside the zone run along them;
- a jurisdiction is the union of its cities.

They are good enough to demonstrate routing and joint border work orders, NOT for real
dispatch. Real boundaries (e.g. from the national administrative-division GeoJSON)
replace them without code changes: point TONGBAN_TICKETS_GEOJSON_PATH at a
FeatureCollection with the same properties (see tickets/geo.py).

Run `python -m tongban.tickets.geodata` to regenerate the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPoint, Point, Polygon, mapping
from shapely.ops import voronoi_diagram

from tongban.tickets.geo import from_metric, to_metric

#: Approximate centres (lon, lat) of the 41 prefecture-level cities (city halls, ±0.05°).
CITY_CENTRES: dict[str, tuple[float, float]] = {
    "310000": (121.47, 31.23), "320100": (118.80, 32.06), "320200": (120.31, 31.49),
    "320300": (117.18, 34.26), "320400": (119.97, 31.81), "320500": (120.62, 31.30),
    "320600": (120.89, 31.98), "320700": (119.22, 34.60), "320800": (119.02, 33.61),
    "320900": (120.16, 33.35), "321000": (119.41, 32.39), "321100": (119.45, 32.20),
    "321200": (119.92, 32.46), "321300": (118.28, 33.96), "330100": (120.15, 30.27),
    "330200": (121.55, 29.87), "330300": (120.70, 28.00), "330400": (120.75, 30.75),
    "330500": (120.09, 30.89), "330600": (120.58, 30.00), "330700": (119.65, 29.08),
    "330800": (118.87, 28.94), "330900": (122.21, 29.99), "331000": (121.42, 28.66),
    "331100": (119.92, 28.47), "340100": (117.23, 31.82), "340200": (118.38, 31.33),
    "340300": (117.39, 32.92), "340400": (117.00, 32.63), "340500": (118.51, 31.67),
    "340600": (116.80, 33.96), "340700": (117.81, 30.94), "340800": (117.06, 30.53),
    "341000": (118.34, 29.71), "341100": (118.32, 32.30), "341200": (115.81, 32.89),
    "341300": (116.98, 33.64), "341500": (116.52, 31.73), "341600": (115.78, 33.84),
    "341700": (117.49, 30.66), "341800": (118.76, 30.94),
}  # fmt: skip

#: Hand-drawn outline of 上海, 江苏, 浙江 and 安徽 together (lon, lat), clockwise from
#: the north-west; coast simplified, the Zhoushan islands as one bulge.
OUTLINE: list[tuple[float, float]] = [
    (115.60, 34.45), (116.35, 34.65), (117.00, 34.95), (117.80, 34.75), (118.40, 34.95),
    (119.20, 35.12), (119.45, 34.75), (120.25, 34.30), (120.85, 33.30), (121.00, 32.85),
    (121.55, 32.35), (121.95, 31.85), (121.95, 31.50), (121.95, 31.05), (121.95, 30.85),
    (121.30, 30.70), (121.00, 30.60), (120.90, 30.50), (120.60, 30.35), (120.85, 30.15),
    (121.25, 30.33), (121.70, 30.05), (122.05, 30.45), (122.55, 30.30), (122.45, 29.75),
    (121.95, 29.55), (121.85, 29.10), (121.65, 28.35), (121.20, 27.95), (120.85, 27.60),
    (120.55, 27.15), (120.20, 27.25), (119.65, 27.55), (119.05, 27.70), (118.60, 28.15),
    (118.35, 28.40), (118.05, 28.95), (118.15, 29.25), (117.60, 29.40), (117.30, 29.45),
    (116.65, 29.60), (116.05, 29.75), (115.90, 30.10), (115.85, 30.55), (115.50, 31.10),
    (115.35, 31.60), (115.60, 32.10), (115.30, 32.30), (115.00, 32.55), (114.90, 33.00),
    (115.30, 33.50), (115.55, 33.90),
]  # fmt: skip

#: The demonstration zone's districts (lon, lat); shared borders use identical vertices.
_TRIPOINT = (120.90, 31.00)  # 沪–苏–浙 near 金泽 / 汾湖 / 西塘 (approximate)
DISTRICTS: dict[str, tuple[str, str, list[tuple[float, float]]]] = {
    "320509": (
        "吴江区",
        "320500",
        [
            (120.36, 31.05), (120.45, 31.20), (120.60, 31.24), (120.75, 31.21),
            (120.90, 31.13), _TRIPOINT, (120.86, 30.97), (120.77, 30.95),
            (120.62, 30.87), (120.47, 30.88), (120.36, 30.95),
        ],
    ),
    "330421": (
        "嘉善县",
        "330400",
        [
            (120.77, 30.95), (120.86, 30.97), _TRIPOINT, (120.98, 30.98),
            (121.03, 30.90), (121.00, 30.80), (120.90, 30.75), (120.80, 30.77),
            (120.75, 30.87),
        ],
    ),
    "310118": (
        "青浦区",
        "310000",
        [
            _TRIPOINT, (120.90, 31.13), (120.93, 31.18), (121.05, 31.27), (121.20, 31.28),
            (121.32, 31.20), (121.30, 31.08), (121.15, 31.02), (121.03, 30.98),
            (120.98, 30.98),
        ],
    ),
}  # fmt: skip

OUT = Path(__file__).parent / "data" / "regions.geojson"


def build(cities: list[dict[str, str]]) -> dict[str, Any]:
    """The FeatureCollection for `cities` (rows with code, name, jurisdiction_code)."""
    outline = to_metric(Polygon(OUTLINE))
    centres = {c["code"]: to_metric(Point(CITY_CENTRES[c["code"]])) for c in cities}
    for code, p in centres.items():
        if not outline.contains(p):
            raise ValueError(f"centre of {code} lies outside the outline")
    cells = voronoi_diagram(MultiPoint(list(centres.values())), envelope=outline.buffer(200_000))
    districts = {code: to_metric(Polygon(ring)) for code, (_, _, ring) in DISTRICTS.items()}
    all_districts = shapely.union_all(list(districts.values()))
    features: list[dict[str, Any]] = []
    for c in cities:
        cell = next(g for g in cells.geoms if g.contains(centres[c["code"]]))
        area = cell.intersection(outline).difference(all_districts)
        own = [g for code, g in districts.items() if DISTRICTS[code][1] == c["code"]]
        area = shapely.union_all([area, *own])
        area = shapely.make_valid(shapely.set_precision(from_metric(area), 1e-5))
        features.append(_feature("city", c["code"], c["name"], c["jurisdiction_code"], c, area))
    by_code = {c["code"]: c for c in cities}
    for code, (name, city_code, ring) in DISTRICTS.items():
        if city_code in by_code:
            j = by_code[city_code]["jurisdiction_code"]
            features.append(_feature("district", code, name, j, {"code": city_code}, Polygon(ring)))
    return {
        "type": "FeatureCollection",
        "name": "tongban synthetic approximate areas (NOT real boundaries)",
        "features": features,
    }


def _feature(
    kind: str, code: str, name: str, jurisdiction: str, city: dict[str, str], geom: Any
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {
            "kind": kind,
            "code": code,
            "name": name,
            "jurisdiction_code": jurisdiction,
            "city_code": city["code"],
            "synthetic": True,
        },
        "geometry": mapping(geom),
    }


def main() -> None:  # pragma: no cover - a maintenance script
    import csv
    from importlib import resources

    path = resources.files("tongban.regions") / "data" / "yrd_cities.csv"
    with path.open(encoding="utf-8") as f:
        cities = list(csv.DictReader(f))
    fc = build(cities)
    OUT.write_text(json.dumps(fc, ensure_ascii=False, separators=(",", ":")), "utf-8")
    print(f"wrote {OUT} ({len(fc['features'])} features)")


if __name__ == "__main__":  # pragma: no cover
    main()
