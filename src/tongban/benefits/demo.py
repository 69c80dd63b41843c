"""Demo data of 免申即享: what the platform holds about a few demo residents (their social
insurance and household, as the registers would feed it) and three older or disabled
people without accounts, evaluated once so that the officer's pages have grants to
show. Idempotent."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import ric

from tongban.benefits import service
from tongban.benefits.domain import TriggerKind
from tongban.exchange import service as exchange
from tongban.identity.models import Account

SI = "社会保险缴费记录（{}社会保险事业管理中心，演示数据）"
HOUSEHOLD = "户籍登记（{}公安机关，演示数据）"

#: username -> (facts, source place)
RESIDENTS: dict[str, tuple[dict[str, Any], str]] = {
    "wangfang": (
        {"insured_status": "正常参保", "months_paid": 48, "household_jurisdiction": "340000"},
        "合肥市",
    ),
    "lina": (
        {"insured_status": "正常参保", "months_paid": 30, "household_jurisdiction": "320000"},
        "苏州市",
    ),
    "zhangwei": ({"household_jurisdiction": "310000"}, "上海市"),
    "chenjie": ({"household_jurisdiction": "330000"}, "杭州市"),
}

#: (area, birth, order, name, household, facts)
OTHERS = [
    ("310101", "19440315", "042", "周桂兰", "310000", {}),
    ("320102", "19570708", "013", "吴建国", "320000", {}),
    (
        "340104",
        "19800211",
        "035",
        "孙立新",
        "340000",
        {"disability_certified": True, "disability_level": 1},
    ),
]


def _ident(area: str, birth: str, order: str) -> str:
    body = area + birth + order
    return body + ric.calc_check_digit(body + "0")


def load(session: Session) -> int:
    """Record the demo facts (once) and evaluate the demo people; how many people."""
    n = 0
    accounts = session.scalars(select(Account).where(Account.username.in_(list(RESIDENTS))))
    for account in accounts:
        if not account.id_number or service.subject(session, account.id_number) is not None:
            continue
        # On a federation every node has the demo accounts; a person's data are held by
        # the node serving their home jurisdiction.
        if not account.jurisdiction_code or not exchange.serves_here(
            session, account.jurisdiction_code
        ):
            continue
        facts, place = RESIDENTS[account.username]
        si = {k: v for k, v in facts.items() if k != "household_jurisdiction"}
        if si:
            service.record_facts(
                session, account.id_number, account.display_name, si, SI.format(place)
            )
        service.record_facts(
            session,
            account.id_number,
            account.display_name,
            {"household_jurisdiction": facts["household_jurisdiction"]},
            HOUSEHOLD.format(place),
        )
        n += 1
    trigger = service.Trigger(TriggerKind.BIRTHDAY, "demo")
    for area, birth, order, name, household, extra in OTHERS:
        ident = _ident(area, birth, order)
        if service.subject(session, ident) is not None or not exchange.serves_here(
            session, household
        ):
            continue
        service.record_facts(
            session, ident, name, {"household_jurisdiction": household}, HOUSEHOLD.format("本地")
        )
        if extra:
            service.record_facts(session, ident, name, extra, "残疾人证（演示数据）")
        service.evaluate_person(session, ident, trigger)
        if extra:
            service.evaluate_person(
                session, ident, service.Trigger(TriggerKind.CERTIFICATE, "demo")
            )
        n += 1
    return n
