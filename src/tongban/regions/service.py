"""Reference data of the federation: jurisdictions, cities, districts, authorities."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.errors import NotFound, ValidationFailed
from tongban.kernel.cache import Cache
from tongban.regions.domain import (
    AuthorityType,
    authority_code,
    authority_name,
    is_municipality,
    read_cities,
    read_districts,
    short_name,
)
from tongban.regions.models import Authority, City, District, Jurisdiction


def load_reference_data(session: Session, data_dir: Path | None = None) -> None:
    """Load (idempotently) jurisdictions, cities, demonstration-zone districts and, for
    every jurisdiction and city, one authority of each type."""
    cities = read_cities(data_dir)
    by_j: dict[str, list[str]] = {}
    j_names: dict[str, str] = {}
    for c in cities:
        by_j.setdefault(c.jurisdiction_code, []).append(c.code)
        j_names[c.jurisdiction_code] = c.jurisdiction_name
    existing_j = set(session.scalars(select(Jurisdiction.code)))
    for code, name in j_names.items():
        if code not in existing_j:
            session.add(Jurisdiction(code=code, name=name, short_name=short_name(code, name)))
    session.flush()
    existing_c = set(session.scalars(select(City.code)))
    for c in cities:
        if c.code not in existing_c:
            session.add(City(code=c.code, name=c.name, jurisdiction_code=c.jurisdiction_code))
    session.flush()
    existing_d = set(session.scalars(select(District.code)))
    for d in read_districts(data_dir):
        if d.code not in existing_d:
            session.add(
                District(code=d.code, name=d.name, city_code=d.city_code, demonstration_zone=True)
            )
    existing_a = set(session.scalars(select(Authority.code)))

    def add(code: str, **kw: object) -> None:
        if code not in existing_a:
            session.add(Authority(code=code, **kw))
            existing_a.add(code)

    for j_code, city_codes in by_j.items():
        municipality = is_municipality(j_code, city_codes)
        for t in AuthorityType:
            if not municipality:
                add(
                    authority_code(j_code, t),
                    name=authority_name(j_names[j_code], t, provincial=True),
                    type=t.value,
                    level="province",
                    jurisdiction_code=j_code,
                    city_code=None,
                )
        for c in cities:
            if c.jurisdiction_code != j_code:
                continue
            for t in AuthorityType:
                add(
                    authority_code(c.code, t),
                    name=authority_name(c.name, t, provincial=False),
                    type=t.value,
                    level="city",
                    jurisdiction_code=j_code,
                    city_code=c.code,
                )
    session.flush()


def list_jurisdictions(session: Session) -> list[Jurisdiction]:
    return list(session.scalars(select(Jurisdiction).order_by(Jurisdiction.code)))


def list_cities(session: Session, jurisdiction_code: str | None = None) -> list[City]:
    q = select(City).order_by(City.code)
    if jurisdiction_code:
        q = q.where(City.jurisdiction_code == jurisdiction_code)
    return list(session.scalars(q))


def list_districts(session: Session) -> list[District]:
    return list(session.scalars(select(District).order_by(District.code)))


def get_city(session: Session, code: str) -> City:
    city = session.get(City, code)
    if city is None:
        raise NotFound(f"城市代码 {code} 不存在", type="unknown-city")
    return city


def get_jurisdiction(session: Session, code: str) -> Jurisdiction:
    j = session.get(Jurisdiction, code)
    if j is None:
        raise NotFound(f"辖区代码 {code} 不存在", type="unknown-jurisdiction")
    return j


def get_authority(session: Session, authority_id: uuid.UUID) -> Authority:
    a = session.get(Authority, authority_id)
    if a is None:
        raise NotFound("部门不存在", type="unknown-authority")
    return a


def authority_by_code(session: Session, code: str) -> Authority:
    a = session.scalar(select(Authority).where(Authority.code == code))
    if a is None:
        raise NotFound(f"部门 {code} 不存在", type="unknown-authority")
    return a


def competent_authority(
    session: Session, authority_type: str, level: str, jurisdiction_code: str, city_code: str | None
) -> Authority:
    """The authority of `authority_type` competent in the chosen place: the city's own for
    city-level matters, the jurisdiction's for provincial ones (a municipality is both)."""
    j = get_jurisdiction(session, jurisdiction_code)
    if city_code is not None:
        city = get_city(session, city_code)
        if city.jurisdiction_code != j.code:
            raise ValidationFailed(
                f"{city.name}不属于{j.name}",
                type="city-not-in-jurisdiction",
                errors=[{"field": "competent_city", "message": "所选城市不属于所选辖区"}],
            )
    q = select(Authority).where(
        Authority.type == authority_type, Authority.jurisdiction_code == j.code
    )
    if level == "province":
        a = session.scalar(q.where(Authority.level == "province"))
        if a is None:  # a municipality has only the city level
            a = session.scalar(q)
    else:
        if city_code is None:
            raise ValidationFailed(
                "该事项由市级部门办理，请选择办理城市",
                type="city-required",
                errors=[{"field": "competent_city", "message": "请选择办理城市"}],
            )
        a = session.scalar(q.where(Authority.city_code == city_code))
    if a is None:
        raise NotFound("未找到有管辖权的部门", type="no-competent-authority")
    return a


def list_authorities(
    session: Session,
    jurisdiction_code: str | None = None,
    city_code: str | None = None,
    type_: str | None = None,
) -> list[Authority]:
    q = select(Authority).order_by(Authority.code)
    if jurisdiction_code:
        q = q.where(Authority.jurisdiction_code == jurisdiction_code)
    if city_code:
        q = q.where(Authority.city_code == city_code)
    if type_:
        q = q.where(Authority.type == type_)
    return list(session.scalars(q))


# --- cached reference data (issue 14: read on every submission, seldom changed) ---------


@dataclass(frozen=True)
class JurisdictionRef:
    code: str
    name: str
    short_name: str


@dataclass(frozen=True)
class CityRef:
    code: str
    name: str
    jurisdiction_code: str


@dataclass(frozen=True)
class AuthorityRef:
    id: uuid.UUID
    code: str
    name: str
    type: str
    level: str
    jurisdiction_code: str
    city_code: str | None


_JURISDICTIONS: Cache[JurisdictionRef | None] = Cache(
    "regions.jurisdiction", tables={"jurisdiction"}, ttl=300
)
_CITIES: Cache[CityRef | None] = Cache("regions.city", tables={"city"}, ttl=300)
_AUTHORITIES: Cache[AuthorityRef | None] = Cache("regions.authority", tables={"authority"}, ttl=300)


def _authority_ref(a: Authority | None) -> AuthorityRef | None:
    if a is None:
        return None
    return AuthorityRef(a.id, a.code, a.name, a.type, a.level, a.jurisdiction_code, a.city_code)


def jurisdiction_ref(session: Session, code: str) -> JurisdictionRef:
    """`get_jurisdiction` as a plain value, from this process's cache."""

    def load() -> JurisdictionRef | None:
        j = session.get(Jurisdiction, code)
        return None if j is None else JurisdictionRef(j.code, j.name, j.short_name)

    ref = _JURISDICTIONS.get(session, code, load)
    if ref is None:
        raise NotFound(f"辖区代码 {code} 不存在", type="unknown-jurisdiction")
    return ref


def city_ref(session: Session, code: str) -> CityRef:
    """`get_city` as a plain value, from this process's cache."""

    def load() -> CityRef | None:
        c = session.get(City, code)
        return None if c is None else CityRef(c.code, c.name, c.jurisdiction_code)

    ref = _CITIES.get(session, code, load)
    if ref is None:
        raise NotFound(f"城市代码 {code} 不存在", type="unknown-city")
    return ref


def authority_ref(session: Session, authority_id: uuid.UUID) -> AuthorityRef:
    """`get_authority` as a plain value, from this process's cache."""
    ref = _AUTHORITIES.get(
        session, authority_id, lambda: _authority_ref(session.get(Authority, authority_id))
    )
    if ref is None:
        raise NotFound("部门不存在", type="unknown-authority")
    return ref


def competent_authority_ref(
    session: Session, authority_type: str, level: str, jurisdiction_code: str, city_code: str | None
) -> AuthorityRef:
    """`competent_authority` as a plain value, from this process's cache (the same
    checks and refusals)."""
    j = jurisdiction_ref(session, jurisdiction_code)
    if city_code is not None:
        city = city_ref(session, city_code)
        if city.jurisdiction_code != j.code:
            raise ValidationFailed(
                f"{city.name}不属于{j.name}",
                type="city-not-in-jurisdiction",
                errors=[{"field": "competent_city", "message": "所选城市不属于所选辖区"}],
            )
    if level != "province" and city_code is None:
        raise ValidationFailed(
            "该事项由市级部门办理，请选择办理城市",
            type="city-required",
            errors=[{"field": "competent_city", "message": "请选择办理城市"}],
        )
    key = ("competent", authority_type, level, j.code, city_code if level != "province" else None)
    ref = _AUTHORITIES.get(
        session,
        key,
        lambda: _authority_ref(
            competent_authority(session, authority_type, level, j.code, city_code)
        ),
    )
    if ref is None:  # not reached: competent_authority raises NotFound itself
        raise NotFound("未找到有管辖权的部门", type="no-competent-authority")
    return ref
