"""Demo licences for the demo federation (`tongban demo`): a wallet to look at."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.errors import DomainError, NotFound
from tongban.exchange import service as exchange
from tongban.identity.models import Account
from tongban.kernel.node import settings_of
from tongban.licences.issuing import IssueRequest, issue_as
from tongban.licences.models import Licence
from tongban.regions import service as regions

#: (username, licence type, issuing authority code, claims besides name and number)
DEMO_LICENCES: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "wangfang",
        "resident_id_card",
        "340100-public_security",
        {
            "sex": "女",
            "ethnicity": "汉",
            "birth_date": "1990-03-07",
            "address": "安徽省合肥市蜀山区长江西路 100 号",
        },
    ),
    (
        "wangfang",
        "driving_licence",
        "340100-public_security",
        {
            "sex": "女",
            "birth_date": "1990-03-07",
            "address": "安徽省合肥市蜀山区长江西路 100 号",
            "licence_class": "C1",
            "first_issued_on": "2012-05-01",
            "file_number": "340100123456",
        },
    ),
    (
        "yrd-tech",
        "business_licence",
        "320500-market_regulation",
        {
            "company_type": "有限责任公司",
            "legal_representative": "李娜",
            "registered_capital": "1000 万元人民币",
            "established_on": "2020-06-18",
            "address": "江苏省苏州市工业园区星湖街 328 号",
            "business_scope": "智能制造装备研发、销售；软件开发",
        },
    ),
]


def seed_demo_licences(session: Session) -> int:
    """Issue the demo licences that are not there yet; returns how many were issued."""
    issued = 0
    for username, type_code, authority_code, extra in DEMO_LICENCES:
        account = session.scalar(select(Account).where(Account.username == username))
        if account is None:
            continue
        ident = account.credit_code or account.id_number or ""
        exists = session.scalar(
            select(Licence.id).where(
                Licence.holder_identifier == ident, Licence.type_code == type_code
            )
        )
        if exists is not None:
            continue
        try:
            authority = regions.authority_by_code(session, authority_code)
        except NotFound:
            continue
        settings = settings_of(session)
        if not exchange.serves(authority.jurisdiction_code, settings.served_jurisdictions):
            continue  # in a federation, only the node serving the issuer issues
        claims = dict(extra)
        if type_code == "business_licence":
            claims.update(credit_code=ident, company_name=account.display_name)
        else:
            claims.update(name=account.display_name, id_number=ident)
        try:
            with session.begin_nested():
                issue_as(
                    session,
                    authority,
                    IssueRequest(type_code, ident, account.display_name, claims),
                    source="demo",
                )
        except DomainError:  # a demo account whose number the checks refuse: no licence
            continue
        issued += 1
    return issued
