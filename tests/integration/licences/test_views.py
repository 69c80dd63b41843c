"""The pages: the holder's wallet (list, licence, presentation as QR code and text), the
verification page, the officer's desk, and 免提交 on the application form and case pages."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tongban.exchange.service import dispatch_pending
from tongban.identity.models import Account
from tongban.licences.sdjwt import parse_sd_jwt

from builders import (
    PASSWORD,
    SIMPLE_FORM,
    SIMPLE_MATTER,
    make_licence,
    make_officer,
    make_resident,
)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TEXTAREA = re.compile(r'<textarea id="presentation-text"[^>]*>([^<]+)</textarea>')


def csrf_of(page: str) -> str:
    m = CSRF.search(page)
    assert m, "no CSRF token on the page"
    return m.group(1)


def login(client: TestClient, account: Account) -> None:
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"username": account.username, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def test_wallet_presents_only_chosen_claims(client: TestClient, session: Session) -> None:
    resident = make_resident(session)
    lic = make_licence(session, resident, "driving_licence")
    login(client, resident)
    page = client.get("/my/licences")
    assert page.status_code == 200 and "机动车驾驶证" in page.text and "我的证照" in page.text
    page = client.get(f"/my/licences/{lic.id}")
    assert lic.identifier in page.text and "C1" in page.text
    page = client.get(f"/my/licences/{lic.id}/present")
    assert 'name="disclose" value="address"' in page.text
    r = client.post(
        f"/my/licences/{lic.id}/present",
        data={"csrf_token": csrf_of(page.text), "disclose": ["name", "licence_class"]},
    )
    assert r.status_code == 200
    assert "<svg" in r.text  # the QR code, inline
    m = TEXTAREA.search(r.text)
    assert m
    text = html.unescape(m.group(1))
    assert {d.name for d in parse_sd_jwt(text).disclosures} == {"name", "licence_class"}
    # verify it on the verification page, as anyone (a fresh client: not logged in)
    anon = TestClient(client.app)
    page = anon.get("/licences/verify")
    r = anon.post("/licences/verify", data={"csrf_token": csrf_of(page.text), "presentation": text})
    assert r.status_code == 200
    assert 'data-valid="true"' in r.text
    assert 'data-claim="licence_class">C1<' in r.text
    assert "安徽省合肥市" not in r.text  # the address was not disclosed
    r = anon.post(
        "/licences/verify",
        data={"csrf_token": csrf_of(page.text), "presentation": text[:-30] + "~"},
    )
    assert 'data-valid="false"' in r.text and 'data-valid="true"' not in r.text


def test_other_resident_sees_nothing(client: TestClient, session: Session) -> None:
    lic = make_licence(session, make_resident(session))
    login(client, make_resident(session))
    assert client.get(f"/my/licences/{lic.id}").status_code == 404
    assert client.get(f"/my/licences/{lic.id}/present").status_code == 404
    assert lic.identifier not in client.get("/my/licences").text


def test_officer_issues_and_revokes_on_pages(client: TestClient, session: Session) -> None:
    officer = make_officer(session, "340100-public_security")
    holder = make_resident(session)
    login(client, officer)
    page = client.get("/officer/licences/new?type=resident_id_card")
    assert page.status_code == 200 and "签发居民身份证" in page.text
    data = {
        "csrf_token": csrf_of(page.text),
        "type_code": "resident_id_card",
        "holder_name": holder.display_name,
        "holder_identifier": holder.id_number,
        "claim_name": holder.display_name,
        "claim_sex": "男",
        "claim_ethnicity": "汉",
        "claim_birth_date": "1990-03-07",
        "claim_id_number": holder.id_number,
    }
    r = client.post("/officer/licences/new", data=data)
    assert r.status_code == 422 and "请填写住址" in r.text  # address missing
    r = client.post(
        "/officer/licences/new", data={**data, "claim_address": "合肥市"}, follow_redirects=False
    )
    assert r.status_code == 303
    detail = r.headers["location"]
    page = client.get(detail)
    assert "已签发" in page.text and "证照记录" in page.text
    lid = detail.rsplit("/", 1)[-1].split("?")[0]
    r = client.post(
        f"/officer/licences/{lid}/status",
        data={"csrf_token": csrf_of(page.text), "action": "revoke", "reason": ""},
    )
    assert r.status_code == 422 and "须说明理由" in r.text
    r = client.post(
        f"/officer/licences/{lid}/status",
        data={"csrf_token": csrf_of(page.text), "action": "revoke", "reason": "重复签发"},
    )
    assert r.status_code == 200 and "已注销" in r.text and "重复签发" in r.text
    assert holder.display_name in client.get("/officer/licences").text
    other = make_officer(session, "320500-public_security")
    login(client, other)
    assert client.get(f"/officer/licences/{lid}").status_code == 404


def test_apply_with_licence_and_case_page_shows_it(
    client: TestClient, session: Session, factory: sessionmaker[Session]
) -> None:
    resident = make_resident(session)
    lic = make_licence(session, resident)
    login(client, resident)
    page = client.get(f"/apply/{SIMPLE_MATTER}")
    assert f'<option value="{lic.id}"' in page.text and 'name="licence_id_card"' in page.text
    data = {
        "csrf_token": csrf_of(page.text),
        "competent_jurisdiction": "320000",
        "competent_city": "320500",
        "mode": "online",
        "delivery_method": "electronic",
        "consent": "1",
        "licence_id_card": str(lic.id),
        **SIMPLE_FORM,
    }
    r = client.post(f"/apply/{SIMPLE_MATTER}", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"])
    assert "已使用电子证照 居民身份证" in page.text and lic.identifier in page.text
    assert "验证通过" in page.text
    # the officer's page shows it too
    dispatch_pending(factory)
    login(client, make_officer(session, "320500-housing_fund"))
    case_id = r.headers["location"].rsplit("/", 1)[-1]
    page = client.get(f"/workbench/cases/{case_id}")
    assert page.status_code == 200
    assert "已使用电子证照 居民身份证" in page.text and lic.identifier in page.text


def test_officer_searches_by_holder_id_number_in_the_body_never_the_url(
    client: TestClient, session: Session
) -> None:
    officer = make_officer(session, "340100-public_security")
    holder, other = make_resident(session), make_resident(session)
    mine = make_licence(session, holder=holder)
    theirs = make_licence(session, holder=other)
    login(client, officer)
    listing = client.get("/officer/licences")
    assert 'method="post" action="/officer/licences"' in listing.text
    found = client.post(
        "/officer/licences",
        data={"csrf_token": csrf_of(listing.text), "q": holder.id_number, "state": ""},
    )
    assert found.status_code == 200
    assert mine.identifier in found.text and theirs.identifier not in found.text
    # A query string is ignored: the number would sit in access logs.
    leaked = client.get(f"/officer/licences?q={holder.id_number}")
    assert theirs.identifier in leaked.text  # unfiltered: the URL's q is not used
    assert client.post("/officer/licences", data={"q": holder.id_number}).status_code == 403
