"""Use cases of cross-region outpatient settlement: parties, rules, and the hospital's
transactions (eligibility, registration, fee upload, pre-settlement, settlement,
reversal, daily reconciliation). Services take a Session and never commit; every
authorisation decision is taken here."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tongban.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tongban.exchange import service as exchange
from tongban.identity import service as identity
from tongban.identity.domain import Role, validate_id_number
from tongban.identity.models import Account
from tongban.medical import domain, queries, reference
from tongban.medical.domain import Accumulators, FilingType, Scheme, Split
from tongban.medical.models import (
    Accumulator,
    CatalogueItem,
    FeeItem,
    Filing,
    HospitalStaff,
    Institution,
    InsuredPerson,
    PolicyRule,
    Visit,
)
from tongban.regions import service as regions

# --- reference data ------------------------------------------------------------------


def load_reference(session: Session, data_dir: Path | None = None) -> tuple[int, int]:
    """Load (idempotently) every city's policies and every jurisdiction's catalogue from
    the CSV files; returns (policies added, catalogue items added). What a load adds to
    existing reference data is an entry of the audit chain ("change",
    medical.reference.loaded); the first load (installing) is not."""
    cities = {c.code: c.jurisdiction_code for c in regions.list_cities(session)}
    jurisdictions = [j.code for j in regions.list_jurisdictions(session)]
    have_p = set(session.execute(select(PolicyRule.city_code, PolicyRule.scheme, PolicyRule.level)))
    added_p = 0
    new_policies: list[dict[str, object]] = []
    new_items: list[list[object]] = []
    for (city, scheme, level), p in sorted(
        reference.resolve_policies(reference.read_policies(data_dir), cities).items()
    ):
        if (city, scheme.value, level) in have_p:
            continue
        session.add(
            PolicyRule(
                city_code=city,
                scheme=scheme.value,
                level=level,
                deductible=p.deductible,
                fund_ratio_bp=p.fund_ratio_bp,
                annual_cap=p.annual_cap,
            )
        )
        new_policies.append(
            {
                "city": city,
                "scheme": scheme.value,
                "level": level,
                "deductible": p.deductible,
                "fund_ratio_bp": p.fund_ratio_bp,
                "annual_cap": p.annual_cap,
            }
        )
        added_p += 1
    have_i = {
        (jur, code): price
        for jur, code, price in session.execute(
            select(CatalogueItem.jurisdiction_code, CatalogueItem.code, CatalogueItem.price_fen)
        )
    }
    added_i = 0
    priced: list[list[object]] = []
    for (jur, code), r in sorted(
        reference.resolve_catalogue(reference.read_catalogue(data_dir), jurisdictions).items()
    ):
        if (jur, code) in have_i:
            # A catalogue loaded before prices were kept gets the file's reference price
            # once; a price already held is not overwritten by a reload.
            if have_i[(jur, code)] is None and r.price_fen is not None:
                session.execute(
                    update(CatalogueItem)
                    .where(CatalogueItem.jurisdiction_code == jur, CatalogueItem.code == code)
                    .values(price_fen=r.price_fen)
                )
                priced.append([jur, code, r.price_fen])
            continue
        session.add(
            CatalogueItem(
                jurisdiction_code=jur,
                code=code,
                name=r.name,
                kind=r.kind.value,
                item_class=r.item_class.value,
                self_pay_first_bp=r.self_pay_first_bp,
                price_fen=r.price_fen,
            )
        )
        new_items.append([jur, code, r.item_class.value, r.self_pay_first_bp, r.price_fen])
        added_i += 1
    session.flush()
    if (new_policies or new_items or priced) and (have_p or have_i):  # not the first load
        from tongban.audit import service as audit  # policies move money: in the chain

        audit.record_change(
            session,
            "medical.reference.loaded",
            "medical:reference",
            "system",
            policies_added=new_policies,
            catalogue_items_added=len(new_items),
            catalogue_items_digest=audit.digest(new_items, session),
            catalogue_prices_set=len(priced),
            catalogue_prices_digest=audit.digest(priced, session),
        )
    return added_p, added_i


def policy_for(session: Session, city: str, scheme: str, level: int) -> domain.Policy:
    """The insured city's policy for a scheme and hospital level."""
    row = session.scalar(
        select(PolicyRule).where(
            PolicyRule.city_code == city, PolicyRule.scheme == scheme, PolicyRule.level == level
        )
    )
    if row is None:
        raise NotFound("参保地未配置该险种和医院等级的待遇政策", type="no-policy")
    return domain.Policy(row.deductible, row.fund_ratio_bp, row.annual_cap)


def catalogue(session: Session, jurisdiction: str) -> list[CatalogueItem]:
    """The treatment jurisdiction's catalogue, by code."""
    return list(
        session.scalars(
            select(CatalogueItem)
            .where(CatalogueItem.jurisdiction_code == jurisdiction)
            .order_by(CatalogueItem.code)
        )
    )


# --- parties -------------------------------------------------------------------------


def create_institution(
    session: Session,
    *,
    code: str,
    name: str,
    city_code: str,
    level: int,
    district_code: str | None = None,
) -> Institution:
    """Register a designated medical institution of a city."""
    city = regions.get_city(session, city_code)
    if level not in (1, 2, 3):
        raise ValidationFailed(
            "医院等级须为一级、二级或三级", errors=[{"field": "level", "message": "无效"}]
        )
    inst = Institution(
        code=code,
        name=name,
        jurisdiction_code=city.jurisdiction_code,
        city_code=city.code,
        district_code=district_code,
        level=level,
    )
    session.add(inst)
    session.flush()
    return inst


def create_insured(
    session: Session,
    *,
    id_number: str,
    name: str,
    city_code: str,
    scheme: str,
    account_balance: int = 0,
    district_code: str | None = None,
) -> InsuredPerson:
    """Enrol an insured person in a city's scheme (employee or resident)."""
    city = regions.get_city(session, city_code)
    errors = []
    try:
        id_number = validate_id_number(id_number)
    except ValueError as e:
        errors.append({"field": "id_number", "message": str(e)})
    try:
        Scheme(scheme)
    except ValueError:
        errors.append({"field": "scheme", "message": "险种须为职工医保或居民医保"})
    if account_balance < 0 or (scheme == Scheme.RESIDENT and account_balance):
        errors.append({"field": "account_balance", "message": "个人账户余额无效"})
    if errors:
        raise ValidationFailed("参保信息有误", errors=errors)
    person = InsuredPerson(
        id_number=id_number,
        name=name,
        jurisdiction_code=city.jurisdiction_code,
        city_code=city.code,
        district_code=district_code,
        scheme=scheme,
        account_balance=account_balance,
    )
    session.add(person)
    session.flush()
    return person


def assign_staff(session: Session, account: Account, institution: Institution) -> None:
    """Map a hospital staff account to its institution."""
    if account.role != Role.HOSPITAL:
        raise ValidationFailed("只有医疗机构工作人员账户可以关联医疗机构")
    row = session.get(HospitalStaff, account.id)
    if row is None:
        session.add(HospitalStaff(account_id=account.id, institution_id=institution.id))
    else:
        row.institution_id = institution.id
    session.flush()


def create_filing(
    session: Session,
    person: InsuredPerson,
    *,
    type: str,
    valid_from: date,
    valid_to: date | None = None,
    target_city: str | None = None,
    target_jurisdiction: str | None = None,
    channel: str = "self",
    filed_by: str | None = None,
    consent_at: datetime | None = None,
) -> Filing:
    """备案: allow direct settlement away from home in a city (or a whole jurisdiction).
    On the insured node, where the person's record is."""
    errors = []
    try:
        FilingType(type)
    except ValueError:
        errors.append({"field": "type", "message": "备案类型无效"})
    if valid_to is not None and valid_to < valid_from:
        errors.append({"field": "valid_to", "message": "有效期止不能早于有效期起"})
    if target_city is not None:
        city = regions.get_city(session, target_city)
        if target_jurisdiction not in (None, city.jurisdiction_code):
            errors.append({"field": "target_city", "message": "就医城市不属于所选辖区"})
        target_jurisdiction = city.jurisdiction_code
    if target_city == person.city_code:
        errors.append({"field": "target_city", "message": "参保地就医无需备案"})
    if errors:
        raise ValidationFailed("备案信息有误", errors=errors)
    f = Filing(
        insured_id=person.id,
        type=type,
        target_city=target_city,
        target_jurisdiction=target_jurisdiction,
        valid_from=valid_from,
        valid_to=valid_to,
        channel=channel,
        filed_by=filed_by,
        consent_at=consent_at,
    )
    session.add(f)
    session.flush()
    return f


def file_for_self(
    session: Session,
    actor: Account,
    *,
    type: str,
    valid_from: date,
    valid_to: date | None,
    target_city: str | None,
    target_jurisdiction: str | None,
) -> Filing:
    """A resident files for themselves online (their own ID number only), on their own
    node: the one serving the jurisdiction they are insured in."""
    person = my_insured_record(session, actor)
    return create_filing(
        session,
        person,
        type=type,
        valid_from=valid_from,
        valid_to=valid_to,
        target_city=target_city,
        target_jurisdiction=target_jurisdiction,
    )


def my_insured_record(session: Session, actor: Account) -> InsuredPerson:
    """The signed-in resident's own insurance record, on this node (the one serving
    their insured jurisdiction); their identity must be proven."""
    if actor.role != Role.RESIDENT or not actor.id_number:
        raise PermissionDenied("只有参保人本人可以在线备案")
    # The insured record is found by ID number: only a proven identity may use it.
    identity.require_assurance(actor)
    try:
        person = insured_by_id_number(session, actor.id_number)
    except NotFound:
        person = None
    if person is None or not exchange.serves_here(session, person.jurisdiction_code):
        raise NotFound(NOT_INSURED_HERE, type="not-insured")
    return person


#: A resident whose record is not on this node: filings are made on the insured node.
NOT_INSURED_HERE = "未查询到您在本节点的参保信息：异地就医备案须在参保地办理"


def my_filings(session: Session, actor: Account) -> tuple[InsuredPerson, list[Filing]]:
    """The signed-in resident's record and filings, newest first."""
    person = my_insured_record(session, actor)
    return person, sorted(filings_of(session, person), key=lambda f: f.created_at, reverse=True)


def filings_of(session: Session, person: InsuredPerson) -> list[Filing]:
    return list(
        session.scalars(
            select(Filing).where(Filing.insured_id == person.id).order_by(Filing.valid_from)
        )
    )


def insured_by_id_number(session: Session, id_number: str) -> InsuredPerson:
    """The insured person with this ID number (any city of the federation)."""
    person = session.scalar(
        select(InsuredPerson).where(InsuredPerson.id_number == id_number.strip().upper())
    )
    if person is None:
        raise NotFound("未查询到该参保人的参保信息", type="not-insured")
    return person


def institution_of(session: Session, actor: Account) -> Institution:
    """The institution a hospital staff account works for; refuses anyone else."""
    if actor.role != Role.HOSPITAL:
        raise PermissionDenied("只有医疗机构工作人员可以办理异地就医结算")
    row = session.get(HospitalStaff, actor.id)
    if row is None:
        raise PermissionDenied("当前账户未关联医疗机构")
    inst = session.get(Institution, row.institution_id)
    assert inst is not None
    return inst


def get_institution(session: Session, code: str) -> Institution:
    inst = session.scalar(select(Institution).where(Institution.code == code))
    if inst is None:
        raise NotFound(f"医疗机构 {code} 不存在", type="unknown-institution")
    return inst


# --- eligibility ---------------------------------------------------------------------


def _zone(session: Session) -> frozenset[str]:
    return frozenset(d.code for d in regions.list_districts(session) if d.demonstration_zone)


def _filing_record(f: Filing) -> domain.FilingRecord:
    return domain.FilingRecord(
        type=FilingType(f.type),
        valid_from=f.valid_from,
        valid_to=f.valid_to,
        target_city=f.target_city,
        target_jurisdiction=f.target_jurisdiction,
        revoked=f.revoked_at is not None,
    )


def filing_check(
    session: Session, person: InsuredPerson, treated: domain.Place, day: date
) -> tuple[domain.FilingDecision, Filing | None]:
    """Whether treatment at the place `treated` (an institution's city, jurisdiction and
    district) on `day` needs a filing, and the filing that covers it. On the insured
    node, where the person's filings are."""
    rows = filings_of(session, person)
    records = {id(r): _filing_record(r) for r in rows}
    decision = domain.filing_decision(
        domain.Place(person.city_code, person.jurisdiction_code, person.district_code),
        treated,
        list(records.values()),
        day,
        _zone(session),
    )
    used = next((r for r in rows if records[id(r)] is decision.filing), None)
    return decision, used


def _refuse_without_filing(decision: domain.FilingDecision) -> None:
    if not decision.allowed:
        raise ValidationFailed(
            decision.reason,
            type="filing-required",
            errors=[{"field": "filing", "message": decision.reason}],
        )


def accumulators(session: Session, person: InsuredPerson, year: int) -> Accumulators:
    """The person's accumulators for `year` (zeros before the first settlement)."""
    row = session.get(Accumulator, (person.id, year))
    return Accumulators(
        deductible_used=row.deductible_used if row else 0,
        fund_paid=row.fund_paid if row else 0,
        account_balance=person.account_balance,
    )


@dataclass(frozen=True)
class Person:
    """An insured person as their insured node described them to this (treatment) node."""

    id_number: str
    name: str
    jurisdiction_code: str
    city_code: str
    district_code: str | None
    scheme: str


@dataclass
class Eligibility:
    """参保信息查询: who the person is, whether they may settle here, and their year, as
    their insured node answered."""

    person: Person
    institution: Institution
    decision: domain.FilingDecision
    filing: queries.FilingOut | None
    policy: domain.Policy
    accumulators: Accumulators
    year: int


def _id_number(value: str) -> str:
    value = (value or "").strip().upper()
    try:
        return validate_id_number(value)
    except ValueError as e:
        raise ValidationFailed(
            "身份证号码有误", errors=[{"field": "id_number", "message": str(e)}]
        ) from None


def eligibility(
    session: Session, actor: Account, id_number: str, insured_city: str | None = None
) -> Eligibility:
    """Eligibility of an insured person for direct settlement at the actor's institution
    today — scheme, filing needed/present, policy of their city, accumulators, balance —
    asked of their insured node (`insured_city`, from their medical-insurance card, or
    the area of their ID number, says which). The node down or slow is a 503 in Chinese."""
    inst = institution_of(session, actor)
    id_number = _id_number(id_number)
    target = queries.insured_jurisdiction(session, id_number, insured_city)
    ask = queries.EligibilityAsk(
        id_number=id_number,
        institution=queries.institution_ref(inst),
        operator=actor.display_name[:200],
    )
    # Nothing read so far needs to stay locked: on SQLite the node's write lock is not
    # held while the insured node answers (two nodes asking each other do not wait).
    a: queries.EligibilityAnswer = queries.ask(
        session,
        queries.ELIGIBILITY,
        source=inst.jurisdiction_code,
        target=target,
        payload=ask,
        release_idle=True,
    )
    f = a.filing
    record = (
        domain.FilingRecord(f.type, f.valid_from, f.valid_to, f.target_city, f.target_jurisdiction)
        if f is not None
        else None
    )
    return Eligibility(
        person=Person(
            id_number=id_number,
            name=a.person.name,
            jurisdiction_code=a.person.jurisdiction,
            city_code=a.person.city,
            district_code=a.person.district,
            scheme=a.person.scheme.value,
        ),
        institution=inst,
        decision=domain.FilingDecision(a.filing_required, a.filing_reason, record),
        filing=f,
        policy=queries.policy_in(a.policy),
        accumulators=queries.acc_in(a.accumulators),
        year=a.year,
    )


def file_at_counter(
    session: Session,
    actor: Account,
    id_number: str,
    *,
    consent: bool,
    insured_city: str | None = None,
    valid_to: date | None = None,
) -> queries.FilingOut:
    """代办备案: at this institution's counter, with the patient's consent, a filing for
    treatment in this city (临时外出就医) is made on the patient's insured node — asked
    of it (`medical.file`), never kept here: this node learns of it through the
    eligibility query, like any other filing. Refused without consent; the node down
    is the counter's 503."""
    inst = institution_of(session, actor)
    id_number = _id_number(id_number)
    if not consent:
        raise ValidationFailed(
            "代办备案须经参保人本人同意",
            type="consent-required",
            errors=[{"field": "consent", "message": "请确认参保人已同意"}],
        )
    target = queries.insured_jurisdiction(session, id_number, insured_city)
    ask = queries.FileAsk(
        id_number=id_number,
        institution=queries.institution_ref(inst),
        operator=actor.display_name[:200],
        consent=True,
        valid_to=valid_to,
    )
    got: queries.FilingOut = queries.ask(
        session, queries.FILE, source=inst.jurisdiction_code, target=target, payload=ask
    )
    return got


# --- visits and fee items ------------------------------------------------------------

_VISIT_NO = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def register_visit(
    session: Session,
    actor: Account,
    *,
    id_number: str,
    visit_no: str,
    department: str = "",
    diagnosis: str = "",
    insured_city: str | None = None,
) -> Visit:
    """就诊登记: open an outpatient visit for the person their insured node describes;
    refused (with the reason) when a required filing is missing. Registering the same
    visit number twice returns the first."""
    inst = institution_of(session, actor)
    if not _VISIT_NO.fullmatch(visit_no or ""):
        raise ValidationFailed(
            "门诊流水号须为 1–40 位字母、数字或 _ . -",
            errors=[{"field": "visit_no", "message": "格式无效"}],
        )
    id_number = _id_number(id_number)
    existing = session.scalar(
        select(Visit).where(Visit.institution_id == inst.id, Visit.visit_no == visit_no)
    )
    if existing is not None:
        if existing.id_number != id_number:
            raise Conflict("门诊流水号已用于其他参保人", type="visit-no-taken")
        return existing
    elig = eligibility(session, actor, id_number, insured_city)
    _refuse_without_filing(elig.decision)
    p = elig.person
    visit = Visit(
        institution_id=inst.id,
        id_number=p.id_number,
        insured_name=p.name,
        insured_jurisdiction=p.jurisdiction_code,
        insured_city=p.city_code,
        insured_district=p.district_code,
        scheme=p.scheme,
        visit_no=visit_no,
        department=department.strip()[:40],
        diagnosis=diagnosis.strip()[:200],
        registered_by=actor.id,
    )
    session.add(visit)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("门诊流水号已存在，请重试", type="visit-no-taken") from None
    return visit


def get_visit(session: Session, actor: Account, visit_id: uuid.UUID) -> Visit:
    """A visit of the actor's institution (another institution's visit is not found)."""
    inst = institution_of(session, actor)
    visit = session.get(Visit, visit_id)
    if visit is None or visit.institution_id != inst.id:
        raise NotFound("就诊记录不存在", type="unknown-visit")
    return visit


@dataclass(frozen=True)
class ItemInput:
    code: str
    quantity: int
    unit_price: int  # fen


def upload_items(
    session: Session, actor: Account, visit_id: uuid.UUID, items: list[ItemInput]
) -> Visit:
    """费用明细上传: replace the visit's fee items. Each code must be in the treatment
    jurisdiction's catalogue (an unknown code is refused, never guessed as 丙)."""
    visit = get_visit(session, actor, visit_id)
    if visit.status != "open":
        raise Conflict("该就诊已结算，不能修改费用明细；请先冲正", type="visit-settled")
    if not items:
        raise ValidationFailed(
            "费用明细不能为空", errors=[{"field": "items", "message": "至少一项"}]
        )
    known = {c.code: c for c in catalogue(session, visit.institution.jurisdiction_code)}
    errors = []
    for i, it in enumerate(items):
        if it.code not in known:
            errors.append(
                {"field": f"items.{i}.code", "message": f"项目编码 {it.code} 不在就医地医保目录中"}
            )
        if not 1 <= it.quantity <= 100_000:
            errors.append({"field": f"items.{i}.quantity", "message": "数量须为 1–100000 的整数"})
        if not 0 <= it.unit_price <= 100_000_000:
            errors.append({"field": f"items.{i}.unit_price", "message": "单价（分）无效"})
    if errors:
        raise ValidationFailed("费用明细有误", type="bad-fee-items", errors=errors)
    visit.items.clear()
    session.flush()
    for seq, it in enumerate(items, start=1):
        c = known[it.code]
        visit.items.append(
            FeeItem(
                visit_id=visit.id,
                seq=seq,
                code=c.code,
                name=c.name,
                kind=c.kind,
                item_class=c.item_class,
                self_pay_first_bp=c.self_pay_first_bp,
                quantity=it.quantity,
                unit_price=it.unit_price,
                amount=it.quantity * it.unit_price,
            )
        )
    session.flush()
    return visit


def lines_of(visit: Visit) -> list[domain.Line]:
    return [
        domain.Line(i.amount, domain.ItemClass(i.item_class), i.self_pay_first_bp)
        for i in visit.items
    ]


def visit_fingerprint(visit: Visit) -> str:
    return domain.fingerprint(
        str(visit.id), [(i.code, i.quantity, i.unit_price) for i in visit.items]
    )


def split_for(visit: Visit, policy: domain.Policy, acc: Accumulators) -> Split:
    """The visit's claim split with the insured node's policy and accumulators (the
    pure rule, domain.split_claim)."""
    return domain.split_claim(lines_of(visit), policy, acc, Scheme(visit.scheme))
