"""Short links for the verify page: a small QR that opens the verify page with the
presentation; unguessable, expiring, bounded, rate-limited; the long QR still works."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tongban.config import Settings
from tongban.errors import TooManyRequests, ValidationFailed
from tongban.licences import shortlinks, tasks
from tongban.licences.models import ShortLink
from tongban.licences.schemas import MAX_PRESENTATION

from .test_views import TEXTAREA, csrf_of, login
from builders import make_licence, make_officer, make_resident

URL = re.compile(r'<input id="short-url" value="([^"]+)"')


def _present(client: TestClient, session: Session):
    resident = make_resident(session)
    lic = make_licence(session, resident, "driving_licence")
    login(client, resident)
    page = client.get(f"/my/licences/{lic.id}/present")
    r = client.post(
        f"/my/licences/{lic.id}/present",
        data={"csrf_token": csrf_of(page.text), "disclose": ["name", "licence_class"]},
    )
    assert 'action="/my/licences/short-links"' in r.text
    return resident, r.text, html.unescape(TEXTAREA.search(r.text).group(1))


def test_a_short_link_opens_the_verify_page_with_the_presentation(
    client: TestClient, session: Session
) -> None:
    resident, page, text = _present(client, session)
    r = client.post(
        "/my/licences/short-links", data={"csrf_token": csrf_of(page), "presentation": text}
    )
    assert r.status_code == 200 and "<svg" in r.text  # the small QR
    url = html.unescape(URL.search(r.text).group(1))
    token = url.rsplit("/v/", 1)[1]
    assert len(token) == 26 and re.fullmatch(r"[a-z2-7]+", token)  # 16 bytes, base32
    assert len(url) < len(text) / 4  # why it exists: a much smaller QR
    anon = TestClient(client.app)
    shown = anon.get(f"/v/{token}")
    assert shown.status_code == 200
    assert 'data-valid="true"' in shown.text and 'data-claim="licence_class">C1<' in shown.text
    # The long QR keeps working without the short link.
    page = anon.get("/licences/verify")
    long = anon.post("/licences/verify", data={"csrf_token": csrf_of(page.text), "presentation": text})  # fmt: skip
    assert 'data-valid="true"' in long.text


def test_unknown_and_expired_links_are_chinese_pages_404_and_410(
    client: TestClient, session: Session
) -> None:
    resident = make_resident(session)
    unknown = client.get("/v/" + "a" * 26)
    assert unknown.status_code == 404 and "核验链接不存在" in unknown.text
    link = shortlinks.create(session, resident, "abc~def~")
    link.expires_at = link.created_at - timedelta(seconds=1)
    session.commit()
    gone = client.get(f"/v/{link.token}")
    assert gone.status_code == 410 and "核验链接已过期" in gone.text
    assert 'href="/licences/verify"' in gone.text
    assert shortlinks.purge_expired(session) == 1 and session.get(ShortLink, link.token) is None


def test_creation_is_bounded_holder_only_and_rate_limited(session: Session) -> None:
    resident = make_resident(session)
    with pytest.raises(ValidationFailed):
        shortlinks.create(session, resident, "x" * (MAX_PRESENTATION + 1))
    with pytest.raises(ValidationFailed):
        shortlinks.create(session, resident, "  ")
    from tongban.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        shortlinks.create(session, make_officer(session, "320500-housing_fund"), "abc~")
    tokens = {
        shortlinks.create(session, resident, f"p{i}~").token for i in range(shortlinks.PER_HOUR)
    }
    assert len(tokens) == shortlinks.PER_HOUR  # random, never reused
    with pytest.raises(TooManyRequests):
        shortlinks.create(session, resident, "one-more~")
    # Another holder is not affected.
    assert shortlinks.create(session, make_resident(session), "abc~").token


def test_the_holders_device_asks_for_a_short_link_over_the_api(
    client: TestClient, session: Session
) -> None:
    from builders import token_for

    resident = make_resident(session)
    lic = make_licence(session, resident, "driving_licence")
    h = token_for(client, resident)
    p = client.post(
        f"/api/v1/my/licences/{lic.id}/presentations", json={"disclose": ["name"]}, headers=h
    ).json()["presentation"]
    r = client.post("/api/v1/my/licences/short-links", json={"presentation": p}, headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["url"].endswith(f"/v/{body['token']}") and body["expires_at"]
    shown = TestClient(client.app).get(f"/v/{body['token']}")
    assert 'data-valid="true"' in shown.text
    anon = client.post("/api/v1/my/licences/short-links", json={"presentation": p})
    assert anon.status_code == 401


def test_the_purge_job_deletes_expired_links_only(
    session: Session, factory: sessionmaker[Session], settings: Settings
) -> None:
    resident = make_resident(session)
    old = shortlinks.create(session, resident, "abc~def~")
    old.expires_at = old.created_at - timedelta(seconds=1)
    fresh = shortlinks.create(session, resident, "ghi~jkl~")
    session.commit()
    old_token, fresh_token = old.token, fresh.token
    job = next(j for j in tasks.JOBS if j.name == "licences.short_link_purge")
    assert job.run(factory, settings) == 1
    session.expunge_all()
    assert session.get(ShortLink, old_token) is None
    assert session.get(ShortLink, fresh_token) is not None
