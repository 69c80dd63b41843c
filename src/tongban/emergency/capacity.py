"""Hospital capacity (医疗救治能力): each hospital's beds by type (general, ICU, isolation
with negative pressure), ventilators, the facility's and the emergency department's
status at a time, reported by the city's emergency staff, as a form, as JSON or as
OASIS EDXL-HAVE 1.0 XML (the mapping is in docs/emergency.md). Services take a session
and never commit.

Every report is kept (the hospital's history); the latest per hospital is its state.
Each jurisdiction's node owns its hospitals' reports and shares the per-city sum of the
latest ones with the other nodes as a ``kernel.replication.Published`` state
(``emergency.capacity_published``), like the stock aggregate (sharing.py).

XML is parsed with defusedxml (the standard library's parser behind a guard that refuses
any DTD, entity declaration or external reference before expanding it): pure Python,
nothing to compile, and it refuses the whole hostile class (billion laughs, external
entities) instead of depending on parser flags being set right at each call."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from pydantic import Field
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tongban.db import utcnow
from tongban.emergency import access, sharing
from tongban.emergency.capacity_models import CapacityReport, SharedCapacity
from tongban.emergency.domain import Duty
from tongban.errors import FieldError, NotFound, PermissionDenied, ValidationFailed
from tongban.exchange import schema
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel import replication
from tongban.regions import service as regions


class FacilityStatus(StrEnum):
    """EDXL-HAVE FacilityStatus."""

    NORMAL = "normal"
    COMPROMISED = "compromised"
    EVACUATING = "evacuating"
    CLOSED = "closed"


class EDStatus(StrEnum):
    """EDXL-HAVE EMSTrafficStatus of the emergency department."""

    NORMAL = "normal"
    ADVISORY = "advisory"
    CLOSED = "closed"
    NOT_APPLICABLE = "not_applicable"


FACILITY_LABELS = {
    FacilityStatus.NORMAL: "正常运行",
    FacilityStatus.COMPROMISED: "运行受限",
    FacilityStatus.EVACUATING: "正在疏散",
    FacilityStatus.CLOSED: "停止运行",
}
ED_LABELS = {
    EDStatus.NORMAL: "正常接诊",
    EDStatus.ADVISORY: "接诊受限",
    EDStatus.CLOSED: "暂停接收急救车",
    EDStatus.NOT_APPLICABLE: "无急诊",
}

#: The counts a report carries: (kind, Chinese label).
KINDS = (
    ("general", "普通床位"),
    ("icu", "重症监护床位"),
    ("isolation", "负压隔离床位"),
    ("ventilators", "呼吸机"),
)
KIND_LABELS = dict(KINDS)

#: EDXL-HAVE 1.0 names, both ways.
HAVE_NS = "urn:oasis:names:tc:emergency:EDXL:HAVE:1.0"
XPIL_NS = "urn:oasis:names:tc:ciq:xpil:3"
XNL_NS = "urn:oasis:names:tc:ciq:xnl:3"
#: Ventilators are not a bed type of EDXL-HAVE 1.0: carried in this extension namespace.
EXT_NS = "urn:tongban:emergency:have-ext:1"
FACILITY_TO_HAVE = {
    "normal": "Normal",
    "compromised": "Compromised",
    "evacuating": "Evacuating",
    "closed": "Closed",
}
ED_TO_HAVE = {
    "normal": "Normal",
    "advisory": "Advisory",
    "closed": "Closed",
    "not_applicable": "NotApplicable",
}
#: Bed types written on export; on import every type listed for a kind is summed.
BED_TYPES_OUT = {
    "general": "MedicalSurgical",
    "icu": "AdultICU",
    "isolation": "NegativeFlowIsolation",
}
BED_TYPES_IN = {
    "MedicalSurgical": "general",
    "Pediatrics": "general",
    "AdultICU": "icu",
    "PediatricICU": "icu",
    "NeonatalICU": "icu",
    "NegativeFlowIsolation": "isolation",
    "OtherIsolation": "isolation",
}

#: Largest count a report may carry, largest XML/JSON body, most hospitals per import.
MAX_COUNT = 100_000
MAX_BYTES = 2_000_000
MAX_HOSPITALS = 2_000
#: A report older than this is flagged as stale on the page.
STALE_AFTER = timedelta(hours=24)
#: How far ahead of the server's clock a report's time may be.
CLOCK_SKEW = timedelta(minutes=10)


@dataclass
class ReportIn:
    """A report as the form, the JSON and the XML give it."""

    hospital_code: str
    hospital_name: str
    city_code: str
    status: str = FacilityStatus.NORMAL.value
    ed_status: str = EDStatus.NORMAL.value
    reported_at: datetime | None = None
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    comment: str = ""


def hospital_code(city_code: str, code: str) -> str:
    """A hospital's code as stored: prefixed with its city's (unique in the federation)."""
    code = code.strip()
    return code if code.startswith(f"{city_code}-") else f"{city_code}-{code}"


def may_report(session: Session, actor: Account, jurisdiction: str, city: str) -> bool:
    return any(
        access.has_duty(session, actor, d, jurisdiction, city)
        for d in (Duty.KEEPER, Duty.COORDINATOR)
    )


def _check(data: ReportIn, prefix: str = "") -> list[FieldError]:
    errors: list[FieldError] = []
    code = hospital_code(data.city_code, data.hospital_code) if data.city_code else ""
    if not (8 <= len(code) <= 40) or not code.replace("-", "").isalnum():
        errors.append(FieldError(f"{prefix}hospital_code", "医院编码为 1 至 33 位字母或数字"))
    if not data.hospital_name.strip() or len(data.hospital_name) > 120:
        errors.append(FieldError(f"{prefix}hospital_name", "医院名称为 1 至 120 个字符"))
    if data.status not in {s.value for s in FacilityStatus}:
        errors.append(FieldError(f"{prefix}status", "医院运行状态不正确"))
    if data.ed_status not in {s.value for s in EDStatus}:
        errors.append(FieldError(f"{prefix}ed_status", "急诊状态不正确"))
    if len(data.comment) > 500:
        errors.append(FieldError(f"{prefix}comment", "说明不能超过 500 个字符"))
    if data.reported_at is not None:
        if data.reported_at.tzinfo is None:
            errors.append(FieldError(f"{prefix}reported_at", "报告时间须带时区"))
        elif data.reported_at > utcnow() + CLOCK_SKEW:
            errors.append(FieldError(f"{prefix}reported_at", "报告时间不能晚于当前时间"))
    for kind, (available, baseline) in data.counts.items():
        if kind not in KIND_LABELS:
            errors.append(FieldError(f"{prefix}{kind}", "未知的床位类型"))
            continue
        for name, n in (("available", available), ("baseline", baseline)):
            if not 0 <= n <= MAX_COUNT:
                errors.append(
                    FieldError(f"{prefix}{kind}_{name}", f"数量须在 0 至 {MAX_COUNT} 之间")
                )
    return errors


def report(
    session: Session, actor: Account | None, data: ReportIn, source: str = "form"
) -> CapacityReport:
    """Record one hospital's report (a new row of its history) by a keeper or
    coordinator of its city (None: the system). Publishes the jurisdiction's aggregate
    when the transaction commits."""
    return report_many(session, actor, [data], source)[0]


def report_many(
    session: Session, actor: Account | None, reports: Sequence[ReportIn], source: str
) -> list[CapacityReport]:
    """Record several reports, all or none: every error is named by its position
    (``hospitals[i].field``) when there is more than one."""
    if not reports:
        raise ValidationFailed("没有医院数据", errors=[FieldError("hospitals", "至少一家医院")])
    if len(reports) > MAX_HOSPITALS:
        raise ValidationFailed(
            f"一次最多报送 {MAX_HOSPITALS} 家医院",
            errors=[FieldError("hospitals", f"最多 {MAX_HOSPITALS} 家")],
        )
    errors: list[FieldError] = []
    cities = {c.code: c for c in regions.list_cities(session)}
    for i, data in enumerate(reports):
        prefix = f"hospitals[{i}]." if len(reports) > 1 else ""
        city = cities.get(data.city_code)
        if city is None:
            errors.append(FieldError(f"{prefix}city_code", "城市不存在"))
            continue
        if not exchange.serves_here(session, city.jurisdiction_code):
            raise PermissionDenied(f"本节点不服务于{city.name}所在辖区", type="not-served")
        if actor is not None and not may_report(session, actor, city.jurisdiction_code, city.code):
            raise PermissionDenied(
                f"须由{city.name}的应急物资储备管理员或调度员报送", type="no-duty"
            )
        errors += _check(data, prefix)
    if errors:
        raise ValidationFailed("医疗救治能力报告有误", errors=errors)
    now = utcnow()
    out = []
    for data in reports:
        city = cities[data.city_code]
        counts = {k: data.counts.get(k, (0, 0)) for k in KIND_LABELS}
        row = CapacityReport(
            hospital_code=hospital_code(city.code, data.hospital_code),
            hospital_name=data.hospital_name.strip(),
            jurisdiction_code=city.jurisdiction_code,
            city_code=city.code,
            reported_at=data.reported_at or now,
            status=data.status,
            ed_status=data.ed_status,
            comment=data.comment.strip(),
            source=source,
            reported_by=actor.id if actor is not None else None,
            **{f"{k}_available": a for k, (a, _) in counts.items()},
            **{f"{k}_baseline": b for k, (_, b) in counts.items()},
        )
        session.add(row)
        out.append(row)
    session.flush()
    for j in sorted({r.jurisdiction_code for r in out}):
        capacity_changed(session, j)
    return out


# --- reading ---------------------------------------------------------------------------------


def latest(
    session: Session,
    *,
    jurisdictions: Iterable[str] | None = None,
    city_code: str | None = None,
    ed_status: str | None = None,
    status: str | None = None,
) -> list[CapacityReport]:
    """The latest report of each hospital held here (ties on time: the last written)."""
    newest = select(
        CapacityReport.hospital_code.label("code"),
        func.max(CapacityReport.reported_at).label("at"),
    ).group_by(CapacityReport.hospital_code)
    if jurisdictions is not None:
        newest = newest.where(CapacityReport.jurisdiction_code.in_(list(jurisdictions)))
    if city_code:
        newest = newest.where(CapacityReport.city_code == city_code)
    sub = newest.subquery()
    stmt = select(CapacityReport).join(
        sub,
        (CapacityReport.hospital_code == sub.c.code) & (CapacityReport.reported_at == sub.c.at),
    )
    if ed_status:
        stmt = stmt.where(CapacityReport.ed_status == ed_status)
    if status:
        stmt = stmt.where(CapacityReport.status == status)
    rows: dict[str, CapacityReport] = {}
    for r in session.scalars(stmt.order_by(CapacityReport.created_at)):
        rows[r.hospital_code] = r
    return sorted(rows.values(), key=lambda r: (r.city_code, r.hospital_code))


def history(session: Session, code: str, limit: int = 200) -> list[CapacityReport]:
    rows = list(
        session.scalars(
            select(CapacityReport)
            .where(CapacityReport.hospital_code == code)
            .order_by(CapacityReport.reported_at.desc(), CapacityReport.created_at.desc())
            .limit(limit)
        )
    )
    if not rows:
        raise NotFound(f"医院 {code} 没有能力报告", type="unknown-hospital")
    return rows


def counts_of(r: CapacityReport) -> dict[str, tuple[int, int]]:
    return {k: (getattr(r, f"{k}_available"), getattr(r, f"{k}_baseline")) for k in KIND_LABELS}


@dataclass(frozen=True)
class CityRow:
    """A city's capacity: the sum over its hospitals' latest reports."""

    jurisdiction_code: str
    city_code: str
    hospitals: int
    counts: dict[str, tuple[int, int]]
    ed_diverting: int
    oldest_report_at: datetime | None
    shared: bool
    as_of: datetime | None


def city_sums(reports: Iterable[CapacityReport]) -> dict[tuple[str, str], CityRow]:
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for r in reports:
        a = acc.setdefault(
            (r.jurisdiction_code, r.city_code),
            {"n": 0, "c": {k: [0, 0] for k in KIND_LABELS}, "ed": 0, "old": None},
        )
        a["n"] += 1
        for k, (av, base) in counts_of(r).items():
            a["c"][k][0] += av
            a["c"][k][1] += base
        if r.ed_status == EDStatus.CLOSED.value or r.status != FacilityStatus.NORMAL.value:
            a["ed"] += 1
        a["old"] = r.reported_at if a["old"] is None else min(a["old"], r.reported_at)
    return {
        key: CityRow(
            key[0],
            key[1],
            a["n"],
            {k: (v[0], v[1]) for k, v in a["c"].items()},
            a["ed"],
            a["old"],
            False,
            None,
        )
        for key, a in acc.items()
    }


def by_city(
    session: Session, actor: Account, *, jurisdiction: str | None = None, city: str | None = None
) -> list[CityRow]:
    """Per city: this node's hospitals summed live, other jurisdictions' as shared."""
    access.require_viewer(session, actor)
    served = [
        j.code for j in regions.list_jurisdictions(session) if exchange.serves_here(session, j.code)
    ]
    own = [j for j in served if jurisdiction in (None, j)]
    rows = list(city_sums(latest(session, jurisdictions=own, city_code=city)).values())
    stmt = select(SharedCapacity)
    if jurisdiction:
        stmt = stmt.where(SharedCapacity.jurisdiction_code == jurisdiction)
    if city:
        stmt = stmt.where(SharedCapacity.city_code == city)
    for s in session.scalars(stmt):
        if s.jurisdiction_code in served:
            continue
        rows.append(
            CityRow(
                s.jurisdiction_code,
                s.city_code,
                s.hospitals,
                {k: (int(v[0]), int(v[1])) for k, v in s.counts.items() if k in KIND_LABELS},
                s.ed_diverting,
                s.oldest_report_at,
                True,
                s.as_of,
            )
        )
    return sorted(rows, key=lambda r: r.city_code)


def hospitals(
    session: Session,
    actor: Account,
    *,
    jurisdiction: str | None = None,
    city: str | None = None,
    ed_status: str | None = None,
    status: str | None = None,
) -> list[CapacityReport]:
    """The latest report of each hospital of the jurisdictions this node serves."""
    access.require_viewer(session, actor)
    served = [
        j.code
        for j in regions.list_jurisdictions(session)
        if exchange.serves_here(session, j.code) and jurisdiction in (None, j.code)
    ]
    return latest(session, jurisdictions=served, city_code=city, ed_status=ed_status, status=status)


def age(r: CapacityReport, now: datetime | None = None) -> timedelta:
    return (now or utcnow()) - r.reported_at


def age_text(delta: timedelta) -> str:
    """How old a report is, in Chinese (刚刚, 35 分钟前, 3 小时前, 2 天前)."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "刚刚"
    if minutes < 60:
        return f"{minutes} 分钟前"
    if minutes < 48 * 60:
        return f"{minutes // 60} 小时前"
    return f"{minutes // (24 * 60)} 天前"


# --- JSON --------------------------------------------------------------------------------------


def to_json(r: CapacityReport) -> dict[str, Any]:
    return {
        "hospital_code": r.hospital_code,
        "hospital_name": r.hospital_name,
        "jurisdiction_code": r.jurisdiction_code,
        "city_code": r.city_code,
        "reported_at": r.reported_at.isoformat(),
        "status": r.status,
        "ed_status": r.ed_status,
        "beds": {
            k: {"available": a, "baseline": b}
            for k, (a, b) in counts_of(r).items()
            if k != "ventilators"
        },
        "ventilators": {"available": r.ventilators_available, "baseline": r.ventilators_baseline},
        "comment": r.comment,
        "source": r.source,
    }


# --- EDXL-HAVE XML -------------------------------------------------------------------------------


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def export_have(reports: Iterable[CapacityReport]) -> bytes:
    """EDXL-HAVE 1.0 ``HospitalStatus`` with one ``Hospital`` per report."""
    ET.register_namespace("have", HAVE_NS)
    ET.register_namespace("xpil", XPIL_NS)
    ET.register_namespace("xnl", XNL_NS)
    ET.register_namespace("tb", EXT_NS)
    root = ET.Element(_q(HAVE_NS, "HospitalStatus"))
    for r in reports:
        h = ET.SubElement(root, _q(HAVE_NS, "Hospital"))
        org = ET.SubElement(h, _q(HAVE_NS, "Organization"))
        info = ET.SubElement(org, _q(HAVE_NS, "OrganizationInformation"))
        name = ET.SubElement(info, _q(XPIL_NS, "OrganisationName"))
        ET.SubElement(name, _q(XNL_NS, "NameElement")).text = r.hospital_name
        ids = ET.SubElement(info, _q(XPIL_NS, "Identifiers"))
        ident = ET.SubElement(ids, _q(XPIL_NS, "Identifier"), {"Type": "tongban"})
        ident.text = r.hospital_code
        ET.SubElement(org, _q(EXT_NS, "CityCode")).text = r.city_code
        ed = ET.SubElement(h, _q(HAVE_NS, "EmergencyDepartmentStatus"))
        traffic = ET.SubElement(ed, _q(HAVE_NS, "EMSTraffic"))
        ET.SubElement(traffic, _q(HAVE_NS, "EMSTrafficStatus")).text = ED_TO_HAVE[r.ed_status]
        beds = ET.SubElement(h, _q(HAVE_NS, "HospitalBedCapacityStatus"))
        for kind, bed_type in BED_TYPES_OUT.items():
            bc = ET.SubElement(beds, _q(HAVE_NS, "BedCapacity"))
            ET.SubElement(bc, _q(HAVE_NS, "BedType")).text = bed_type
            cap = ET.SubElement(bc, _q(HAVE_NS, "Capacity"))
            available = getattr(r, f"{kind}_available")
            ET.SubElement(cap, _q(HAVE_NS, "CapacityStatus")).text = (
                "VacantAvailable" if available > 0 else "NotAvailable"
            )
            ET.SubElement(cap, _q(HAVE_NS, "AvailableCount")).text = str(available)
            ET.SubElement(cap, _q(HAVE_NS, "BaselineCount")).text = str(
                getattr(r, f"{kind}_baseline")
            )
        fac = ET.SubElement(h, _q(HAVE_NS, "HospitalFacilityStatus"))
        ET.SubElement(fac, _q(HAVE_NS, "FacilityStatus")).text = FACILITY_TO_HAVE[r.status]
        res = ET.SubElement(h, _q(HAVE_NS, "HospitalResourcesStatus"))
        if r.comment:
            ET.SubElement(res, _q(HAVE_NS, "CommentText")).text = r.comment
        vent = ET.SubElement(res, _q(EXT_NS, "Ventilators"))
        ET.SubElement(vent, _q(HAVE_NS, "AvailableCount")).text = str(r.ventilators_available)
        ET.SubElement(vent, _q(HAVE_NS, "BaselineCount")).text = str(r.ventilators_baseline)
        ET.SubElement(h, _q(HAVE_NS, "LastUpdateTime")).text = r.reported_at.isoformat()
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _child(el: ET.Element, *path: str) -> ET.Element | None:
    """The first descendant along `path` (local names, any namespace)."""
    cur: ET.Element | None = el
    for name in path:
        if cur is None:
            return None
        cur = next((c for c in cur if _local(c.tag) == name), None)
    return cur


def _text(el: ET.Element, *path: str) -> str | None:
    found = _child(el, *path)
    return (found.text or "").strip() if found is not None else None


def _count(el: ET.Element | None, name: str, where: str, errors: list[FieldError]) -> int:
    raw = _text(el, name) if el is not None else None
    if raw is None or raw == "":
        return 0
    try:
        n = int(raw)
    except ValueError:
        errors.append(FieldError(where, f"{name} 须为整数"))
        return 0
    if not 0 <= n <= MAX_COUNT:
        errors.append(FieldError(where, f"{name} 须在 0 至 {MAX_COUNT} 之间"))
    return n


def parse_have(data: bytes, default_city: str | None = None) -> list[ReportIn]:
    """The hospitals of an EDXL-HAVE ``HospitalStatus`` document. Refuses (422) a
    document with a DTD or entities, one that is not well-formed, not HAVE, or whose
    parts read here are wrong, naming ``hospitals[i].…``."""
    if len(data) > MAX_BYTES:
        raise ValidationFailed(
            "文件过大", errors=[FieldError("file", f"不能超过 {MAX_BYTES // 1_000_000} MB")]
        )
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise ValidationFailed(
            "XML 含有 DTD 或实体声明，已拒绝", errors=[FieldError("file", "不允许 DTD 或实体")]
        ) from None
    except ET.ParseError as e:
        raise ValidationFailed(
            "XML 格式不正确", errors=[FieldError("file", f"XML 格式不正确：{e}")]
        ) from None
    if root.tag != _q(HAVE_NS, "HospitalStatus"):
        raise ValidationFailed(
            "不是 EDXL-HAVE 1.0 HospitalStatus 文档",
            errors=[FieldError("file", f"根元素须为 {{{HAVE_NS}}}HospitalStatus")],
        )
    out: list[ReportIn] = []
    errors: list[FieldError] = []
    have_to_facility = {v: k for k, v in FACILITY_TO_HAVE.items()}
    have_to_ed = {v: k for k, v in ED_TO_HAVE.items()}
    hospitals_el = [c for c in root if c.tag == _q(HAVE_NS, "Hospital")]
    if not hospitals_el:
        raise ValidationFailed("文档中没有医院", errors=[FieldError("hospitals", "至少一家医院")])
    if len(hospitals_el) > MAX_HOSPITALS:
        raise ValidationFailed(
            f"一次最多报送 {MAX_HOSPITALS} 家医院",
            errors=[FieldError("hospitals", f"最多 {MAX_HOSPITALS} 家")],
        )
    for i, h in enumerate(hospitals_el):
        p = f"hospitals[{i}]."
        info = _child(h, "Organization", "OrganizationInformation")
        code = name = None
        if info is not None:
            name = _text(info, "OrganisationName", "NameElement")
            ids = _child(info, "Identifiers")
            if ids is not None:
                code = next(
                    ((c.text or "").strip() for c in ids if _local(c.tag) == "Identifier"), None
                )
        city = _text(h, "Organization", "CityCode") or default_city or ""
        if not code:
            errors.append(FieldError(f"{p}hospital_code", "缺少医院标识（Identifier）"))
        if not name:
            errors.append(FieldError(f"{p}hospital_name", "缺少医院名称（OrganisationName）"))
        if not city:
            errors.append(FieldError(f"{p}city_code", "缺少城市编码"))
        traffic = _text(h, "EmergencyDepartmentStatus", "EMSTraffic", "EMSTrafficStatus")
        ed = have_to_ed.get(traffic or "NotApplicable")
        if ed is None:
            errors.append(
                FieldError(f"{p}ed_status", f"EMSTrafficStatus “{traffic}” 不是 HAVE 取值")
            )
        fac_raw = _text(h, "HospitalFacilityStatus", "FacilityStatus")
        fac = have_to_facility.get(fac_raw or "Normal")
        if fac is None:
            errors.append(FieldError(f"{p}status", f"FacilityStatus “{fac_raw}” 不是 HAVE 取值"))
        counts: dict[str, list[int]] = {k: [0, 0] for k in KIND_LABELS}
        beds = _child(h, "HospitalBedCapacityStatus")
        for bc in beds if beds is not None else []:
            if _local(bc.tag) != "BedCapacity":
                continue
            bed_type = _text(bc, "BedType") or ""
            kind = BED_TYPES_IN.get(bed_type)
            if kind is None:
                continue  # a bed type this platform does not track
            cap = _child(bc, "Capacity")
            counts[kind][0] += _count(cap, "AvailableCount", f"{p}{kind}_available", errors)
            counts[kind][1] += _count(cap, "BaselineCount", f"{p}{kind}_baseline", errors)
        vent = _child(h, "HospitalResourcesStatus", "Ventilators")
        counts["ventilators"][0] = _count(
            vent, "AvailableCount", f"{p}ventilators_available", errors
        )
        counts["ventilators"][1] = _count(vent, "BaselineCount", f"{p}ventilators_baseline", errors)
        when_raw = _text(h, "LastUpdateTime")
        when: datetime | None = None
        if when_raw:
            try:
                when = datetime.fromisoformat(when_raw.replace("Z", "+00:00"))
            except ValueError:
                errors.append(FieldError(f"{p}reported_at", "LastUpdateTime 不是 ISO 8601 时间"))
        else:
            errors.append(FieldError(f"{p}reported_at", "缺少 LastUpdateTime"))
        out.append(
            ReportIn(
                hospital_code=code or "",
                hospital_name=name or "",
                city_code=city,
                status=fac or "",
                ed_status=ed or "",
                reported_at=when,
                counts={k: (v[0], v[1]) for k, v in counts.items()},
                comment=(_text(h, "HospitalResourcesStatus", "CommentText") or "")[:500],
            )
        )
    if errors:
        raise ValidationFailed("EDXL-HAVE 文档有误", errors=errors)
    return out


# --- sharing with the federation -----------------------------------------------------------------

CAPACITY_PUBLISHED = "emergency.capacity_published"
CAPACITY = replication.Published(
    CAPACITY_PUBLISHED, scope=lambda p: f"emergency.capacity:{p['jurisdiction']}"
)
MAX_CITIES = 1_000


class CountPair(schema.Payload):
    available: schema.Count
    baseline: schema.Count


class SharedCityRow(schema.Payload):
    city: schema.RegionCode
    hospitals: schema.Count
    general: CountPair
    icu: CountPair
    isolation: CountPair
    ventilators: CountPair
    ed_diverting: schema.Count
    oldest_report_at: schema.Instant | None = None


class CapacityPublished(schema.Payload):
    jurisdiction: schema.RegionCode
    as_of: schema.Instant
    rows: Annotated[list[SharedCityRow], Field(max_length=MAX_CITIES)]
    seq: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


def payload(session: Session, jurisdiction: str) -> dict[str, Any]:
    """`emergency.capacity_published` of `jurisdiction` as its latest reports stand."""
    rows = city_sums(latest(session, jurisdictions=[jurisdiction])).values()
    return {
        "jurisdiction": jurisdiction,
        "as_of": utcnow().isoformat(),
        "rows": [
            {
                "city": r.city_code,
                "hospitals": r.hospitals,
                **{k: {"available": a, "baseline": b} for k, (a, b) in r.counts.items()},
                "ed_diverting": r.ed_diverting,
                "oldest_report_at": r.oldest_report_at.isoformat() if r.oldest_report_at else None,
            }
            for r in sorted(rows, key=lambda r: r.city_code)
        ],
    }


def capacity_changed(session: Session, jurisdiction: str) -> None:
    """`jurisdiction`'s hospitals reported: publish its aggregate when the transaction commits."""
    sharing.publish_at_commit(session, CAPACITY, ("capacity", jurisdiction), jurisdiction, payload)


def authorise(session: Session, p: CapacityPublished, sender: exchange.Sender) -> None:
    sender.require(p.jurisdiction, "医疗救治能力辖区")
    if p.jurisdiction != sender.source_jurisdiction:
        raise exchange.Refused("not-allowed", "辖区须为消息的来源辖区")
    if not sender.local and exchange.serves_here(session, p.jurisdiction):
        raise exchange.Refused("not-allowed", f"本节点自行管理 {p.jurisdiction} 的医疗救治能力")
    sharing.require_own_cities(session, p.jurisdiction, {r.city for r in p.rows})
    if len({r.city for r in p.rows}) != len(p.rows):
        raise exchange.Refused("bad-payload", "同一城市的汇总重复", 422)


@exchange.handler(
    CAPACITY_PUBLISHED, schema=CapacityPublished, authorise=authorise, versions=frozenset({1})
)
def on_capacity_published(session: Session, data: Mapping[str, Any], msg: Any) -> None:
    """Keep another jurisdiction's newest per-city capacity."""
    code = str(data["jurisdiction"])
    if exchange.serves_here(session, code):
        if isinstance(msg, OutboxMessage):
            return
        raise exchange.Refused("not-allowed", f"本节点自行管理 {code} 的医疗救治能力")
    if not CAPACITY.newer(session, data):
        return
    as_of = datetime.fromisoformat(str(data["as_of"]))
    session.execute(delete(SharedCapacity).where(SharedCapacity.jurisdiction_code == code))
    source = getattr(msg, "source_node", None)
    for r in data["rows"]:
        oldest = r.get("oldest_report_at")
        session.add(
            SharedCapacity(
                jurisdiction_code=code,
                city_code=r["city"],
                hospitals=int(r["hospitals"]),
                counts={k: [int(r[k]["available"]), int(r[k]["baseline"])] for k in KIND_LABELS},
                ed_diverting=int(r["ed_diverting"]),
                oldest_report_at=datetime.fromisoformat(str(oldest)) if oldest else None,
                as_of=as_of,
                source_node=source,
            )
        )
    session.flush()


def require_reporter_somewhere(session: Session, actor: Account) -> None:
    """Pages: the report form is for keepers and coordinators (the admin sees it too)."""
    if actor.role == Role.ADMIN:
        return
    if not any(
        d.duty in (Duty.KEEPER.value, Duty.COORDINATOR.value)
        for d in access.duties_of(session, actor)
    ):
        raise PermissionDenied("须由应急物资储备管理员或调度员报送", type="no-duty")
