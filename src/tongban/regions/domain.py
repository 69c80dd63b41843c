"""Reference-data rules for regions: authority types and how authorities are named.

Nothing here names the Yangtze River Delta: the delta is data (regions/data/*.csv).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path


class AuthorityType(StrEnum):
    PUBLIC_SECURITY = "public_security"
    HUMAN_RESOURCES = "human_resources"
    MEDICAL_INSURANCE = "medical_insurance"
    MARKET_REGULATION = "market_regulation"
    CIVIL_AFFAIRS = "civil_affairs"
    HOUSING_FUND = "housing_fund"
    REAL_ESTATE = "real_estate"
    HEALTH = "health"
    TRANSPORT = "transport"
    EDUCATION = "education"
    TAX = "tax"
    GOVERNMENT_SERVICE = "government_service"
    URBAN_MANAGEMENT = "urban_management"
    ECOLOGY_ENVIRONMENT = "ecology_environment"


#: (name at provincial level, name at city level) for each type.
AUTHORITY_NAMES: dict[AuthorityType, tuple[str, str]] = {
    AuthorityType.PUBLIC_SECURITY: ("公安厅", "公安局"),
    AuthorityType.HUMAN_RESOURCES: ("人力资源和社会保障厅", "人力资源和社会保障局"),
    AuthorityType.MEDICAL_INSURANCE: ("医疗保障局", "医疗保障局"),
    AuthorityType.MARKET_REGULATION: ("市场监督管理局", "市场监督管理局"),
    AuthorityType.CIVIL_AFFAIRS: ("民政厅", "民政局"),
    AuthorityType.HOUSING_FUND: ("住房和城乡建设厅", "住房公积金管理中心"),
    AuthorityType.REAL_ESTATE: ("自然资源厅", "不动产登记中心"),
    AuthorityType.HEALTH: ("卫生健康委员会", "卫生健康委员会"),
    AuthorityType.TRANSPORT: ("交通运输厅", "交通运输局"),
    AuthorityType.EDUCATION: ("教育厅", "教育局"),
    AuthorityType.TAX: ("税务局", "税务局"),
    AuthorityType.GOVERNMENT_SERVICE: ("政务服务管理办公室", "政务服务中心"),
    AuthorityType.URBAN_MANAGEMENT: ("住房和城乡建设厅城市管理局", "城市管理综合行政执法局"),
    AuthorityType.ECOLOGY_ENVIRONMENT: ("生态环境厅", "生态环境局"),
}

AUTHORITY_TYPE_LABELS: dict[AuthorityType, str] = {
    AuthorityType.PUBLIC_SECURITY: "公安",
    AuthorityType.HUMAN_RESOURCES: "人社",
    AuthorityType.MEDICAL_INSURANCE: "医保",
    AuthorityType.MARKET_REGULATION: "市场监管",
    AuthorityType.CIVIL_AFFAIRS: "民政",
    AuthorityType.HOUSING_FUND: "住建/公积金",
    AuthorityType.REAL_ESTATE: "不动产登记",
    AuthorityType.HEALTH: "卫健",
    AuthorityType.TRANSPORT: "交通",
    AuthorityType.EDUCATION: "教育",
    AuthorityType.TAX: "税务",
    AuthorityType.GOVERNMENT_SERVICE: "政务服务",
    AuthorityType.URBAN_MANAGEMENT: "城管",
    AuthorityType.ECOLOGY_ENVIRONMENT: "生态环境",
}


@dataclass(frozen=True)
class CityRow:
    code: str
    name: str
    jurisdiction_code: str
    jurisdiction_name: str


@dataclass(frozen=True)
class DistrictRow:
    code: str
    name: str
    city_code: str
    jurisdiction_code: str


def is_municipality(jurisdiction_code: str, city_codes: list[str]) -> bool:
    """A municipality directly under the central government is its own only city
    (上海市 310000 is both jurisdiction and city)."""
    return city_codes == [jurisdiction_code]


def authority_code(area_code: str, type_: AuthorityType) -> str:
    return f"{area_code}-{type_.value}"


def authority_name(area_name: str, type_: AuthorityType, *, provincial: bool) -> str:
    province_suffix, city_suffix = AUTHORITY_NAMES[type_]
    return area_name + (province_suffix if provincial else city_suffix)


def _data_path(name: str, data_dir: Path | None) -> Path:
    if data_dir is not None:
        return data_dir / name
    return Path(str(resources.files("tongban.regions") / "data" / name))


def read_cities(data_dir: Path | None = None) -> list[CityRow]:
    with _data_path("yrd_cities.csv", data_dir).open(encoding="utf-8") as f:
        return [
            CityRow(r["code"], r["name"], r["jurisdiction_code"], r["jurisdiction_name"])
            for r in csv.DictReader(f)
        ]


def read_districts(data_dir: Path | None = None) -> list[DistrictRow]:
    with _data_path("demonstration_zone.csv", data_dir).open(encoding="utf-8") as f:
        return [
            DistrictRow(r["code"], r["name"], r["city_code"], r["jurisdiction_code"])
            for r in csv.DictReader(f)
        ]


def is_valid_division_code(code: str) -> bool:
    """GB/T 2260 codes are six digits; the first two name a province-level division."""
    return len(code) == 6 and code.isdigit() and code[:2] != "00"


#: Official one-character abbreviations of China's province-level divisions,
#: keyed by the first two digits of their GB/T 2260 code.
PROVINCE_ABBREVIATIONS: dict[str, str] = {
    "11": "京", "12": "津", "13": "冀", "14": "晋", "15": "蒙", "21": "辽", "22": "吉",
    "23": "黑", "31": "沪", "32": "苏", "33": "浙", "34": "皖", "35": "闽", "36": "赣",
    "37": "鲁", "41": "豫", "42": "鄂", "43": "湘", "44": "粤", "45": "桂", "46": "琼",
    "50": "渝", "51": "川", "52": "贵", "53": "云", "54": "藏", "61": "陕", "62": "甘",
    "63": "青", "64": "宁", "65": "新", "71": "台", "81": "港", "82": "澳",
}  # fmt: skip


def short_name(jurisdiction_code: str, name: str) -> str:
    return PROVINCE_ABBREVIATIONS.get(jurisdiction_code[:2], name[:1])
