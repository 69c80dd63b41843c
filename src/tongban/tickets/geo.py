"""Where a location lies: city, district, and the other jurisdictions within reach.

Areas come from a GeoJSON FeatureCollection (lon/lat, WGS 84 / GCJ-02 alike at this
precision). Every feature has properties `kind` ("city" or "district"), `code` (GB/T
2260), `name`, `jurisdiction_code` and `city_code` (a city's own code for a city). The
shipped file is a synthetic approximation (see geodata.py); a file with real boundaries
and the same properties replaces it.

Geometry is done by shapely (GEOS) in a local equirectangular projection centred on
31°N, 119.5°E (the region's middle), in metres. Its scale error in the east-west
direction is cos(31°)/cos(φ) − 1: under 0.3 % in the demonstration zone (30.7–31.3°N),
at most −3.6 % at the region's southern edge (27.2°N) and +4.8 % at its northern edge
(35.1°N) — a 500 m border distance is 482–524 m there. North-south error is under 0.1 %.
Point-in-polygon uses an STRtree over prepared polygons.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

LAT0, LON0 = 31.0, 119.5
_PHI = math.radians(LAT0)
#: Metres per degree at 31°N (WGS 84 ellipsoid series).
M_PER_DEG_LAT = 111132.954 - 559.822 * math.cos(2 * _PHI) + 1.175 * math.cos(4 * _PHI)
M_PER_DEG_LON = 111412.84 * math.cos(_PHI) - 93.5 * math.cos(3 * _PHI)


def _fwd(c: np.ndarray) -> np.ndarray:
    return np.column_stack(((c[:, 0] - LON0) * M_PER_DEG_LON, (c[:, 1] - LAT0) * M_PER_DEG_LAT))


def _inv(c: np.ndarray) -> np.ndarray:
    return np.column_stack((c[:, 0] / M_PER_DEG_LON + LON0, c[:, 1] / M_PER_DEG_LAT + LAT0))


def to_metric(geom: Any) -> Any:
    """lon/lat → metres in the local projection."""
    return shapely.transform(geom, _fwd)


def from_metric(geom: Any) -> Any:
    return shapely.transform(geom, _inv)


def metres_between(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Distance in metres in the local projection (good to <0.5 % below 10 km apart)."""
    dx = (lon2 - lon1) * M_PER_DEG_LON * math.cos(math.radians((lat1 + lat2) / 2)) / math.cos(_PHI)
    dy = (lat2 - lat1) * M_PER_DEG_LAT
    return math.hypot(dx, dy)


@dataclass(frozen=True)
class Area:
    kind: str  # city | district
    code: str
    name: str
    jurisdiction_code: str
    city_code: str
    geom: BaseGeometry  # metric


@dataclass(frozen=True)
class Neighbour:
    """Another jurisdiction within the border distance, through its nearest city."""

    jurisdiction_code: str
    city_code: str
    distance_m: float


@dataclass(frozen=True)
class Placement:
    city_code: str
    jurisdiction_code: str
    district_code: str | None
    neighbours: tuple[Neighbour, ...]
    #: The point lay in no area and was given to the nearest one (a gap or the coast).
    snapped: bool = False

    @property
    def joint(self) -> bool:
        return bool(self.neighbours)


class RegionIndex:
    """Cities and districts, indexed for point queries."""

    def __init__(self, areas: list[Area], snap_tolerance_m: float = 3000.0) -> None:
        self.cities = sorted((a for a in areas if a.kind == "city"), key=lambda a: a.code)
        self.districts = sorted((a for a in areas if a.kind == "district"), key=lambda a: a.code)
        if not self.cities:
            raise ValueError("no city areas")
        self.snap_tolerance_m = snap_tolerance_m
        city_geoms = np.array([a.geom for a in self.cities])
        district_geoms = np.array([a.geom for a in self.districts])
        shapely.prepare(city_geoms)
        shapely.prepare(district_geoms)
        self._city_tree = shapely.STRtree(city_geoms)
        self._district_tree = shapely.STRtree(district_geoms)
        self._by_code = {a.code: a for a in [*self.cities, *self.districts]}

    def area(self, code: str) -> Area | None:
        return self._by_code.get(code)

    def locate(self, lon: float, lat: float, border_m: float = 500.0) -> Placement | None:
        """The city (and demonstration-zone district) of a point and the other
        jurisdictions within `border_m` metres; None outside every area."""
        x, y = (lon - LON0) * M_PER_DEG_LON, (lat - LAT0) * M_PER_DEG_LAT
        p = Point(x, y)
        # One tree query finds both the containing city and the neighbours in reach.
        cands = sorted(
            int(i)
            for i in self._city_tree.query(p, predicate="dwithin", distance=max(border_m, 1.0))
        )
        inside = [i for i in cands if shapely.intersects_xy(self.cities[i].geom, x, y)]
        snapped = False
        if not inside:
            near = self._city_tree.query_nearest(p, max_distance=self.snap_tolerance_m)
            if len(near) == 0:
                return None
            inside, snapped = [int(min(near))], True
        city = self.cities[inside[0]]  # on a shared border: the lower code, stably
        district = None
        for d in self.districts:
            if d.city_code == city.code and shapely.intersects_xy(d.geom, x, y):
                district = d.code
                break
        neighbours: dict[str, Neighbour] = {}
        if border_m > 0:
            for i in cands:
                other = self.cities[i]
                if other.jurisdiction_code == city.jurisdiction_code:
                    continue
                dist = float(shapely.distance(other.geom, p))
                if dist > border_m:
                    continue
                known = neighbours.get(other.jurisdiction_code)
                if known is None or dist < known.distance_m:
                    neighbours[other.jurisdiction_code] = Neighbour(
                        other.jurisdiction_code, other.code, dist
                    )
        return Placement(
            city.code,
            city.jurisdiction_code,
            district,
            tuple(sorted(neighbours.values(), key=lambda n: (n.distance_m, n.city_code))),
            snapped,
        )

    def city_codes_of(self, lons: np.ndarray, lats: np.ndarray) -> list[str | None]:
        """Vectorised point-in-polygon for many points (no border or district check)."""
        pts = to_metric(shapely.points(lons, lats))
        inp, tree = self._city_tree.query(pts, predicate="intersects")
        out: list[str | None] = [None] * len(pts)
        for i, t in zip(inp.tolist(), tree.tolist(), strict=True):
            if out[i] is None:
                out[i] = self.cities[t].code
        return out

    def bounds(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat) of all cities."""
        union = from_metric(shapely.union_all([a.geom for a in self.cities]))
        b = union.bounds
        return (b[0], b[1], b[2], b[3])


def areas_from_geojson(fc: dict[str, Any]) -> list[Area]:
    """Areas from a FeatureCollection with the properties described above."""
    if fc.get("type") != "FeatureCollection":
        raise ValueError("not a GeoJSON FeatureCollection")
    out = []
    for f in fc["features"]:
        p = f.get("properties") or {}
        missing = [k for k in ("kind", "code", "jurisdiction_code", "city_code") if not p.get(k)]
        if missing:
            raise ValueError(f"feature {p.get('code')!r} lacks {missing}")
        if p["kind"] not in ("city", "district"):
            continue
        geom = shapely.make_valid(shape(f["geometry"]))
        out.append(
            Area(
                p["kind"],
                str(p["code"]),
                str(p.get("name", p["code"])),
                str(p["jurisdiction_code"]),
                str(p["city_code"]),
                to_metric(geom),
            )
        )
    return out


def load(path: Path | None = None) -> RegionIndex:
    """The index of the shipped synthetic areas, or of the operator's GeoJSON file."""
    if path is None:
        text = (resources.files("tongban.tickets") / "data" / "regions.geojson").read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    return RegionIndex(areas_from_geojson(json.loads(text)))


@lru_cache(maxsize=4)
def cached(path: str | None = None) -> RegionIndex:
    return load(Path(path) if path else None)
