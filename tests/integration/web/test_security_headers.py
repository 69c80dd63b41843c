"""Defence in depth at the edge (issue 10 item 11): CSP and frame headers on pages,
nosniff everywhere, the Origin check of cookie-authenticated API calls, the request-body
size limit, Open311 field lengths and media_url schemes."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tongban.tickets.service import open311

from builders import BORDER_WUJIANG_JIASHAN, csrf_of, make_resident, sign_in, token_for

PROBLEM = "application/problem+json"
EVIL = "https://evil.example"


def _login(client, account) -> str:  # type: ignore[no-untyped-def]
    """Sign in through the page; the session's CSRF token."""
    sign_in(client, account)
    return csrf_of(client.get("/").text)


@pytest.mark.parametrize("path", ["/", "/login", "/matters", "/licences/verify"])
def test_pages_carry_csp_and_frame_headers(client, path) -> None:  # type: ignore[no-untyped-def]
    r = client.get(path)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert re.search(r"script-src 'self' 'nonce-[A-Za-z0-9_-]{16,}'", csp)
    assert "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    # No inline script or handler is left for the CSP to block.
    assert not re.search(r"<script(?![^>]*\bsrc=)", r.text)
    assert not re.search(r"\son[a-z]+=", r.text) and "javascript:" not in r.text


def test_the_nonce_changes_per_response(client) -> None:  # type: ignore[no-untyped-def]
    a = client.get("/").headers["content-security-policy"]
    b = client.get("/").headers["content-security-policy"]
    assert a != b


def test_api_and_static_responses_are_nosniff_and_unframeable(client) -> None:  # type: ignore[no-untyped-def]
    for path in ("/api/v1/tickets/categories", "/static/tongban.js", "/healthz"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_error_pages_carry_the_headers_too(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/no-such-page")
    assert r.status_code == 404
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


ROUTE = {"category_code": "road_damage", "lat": 30.99, "lon": 120.85}


def test_cookie_authenticated_cross_origin_api_post_is_refused(client, session) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session, city="320500")
    csrf = _login(client, resident)
    lat, lon = BORDER_WUJIANG_JIASHAN
    report = {"category_code": "road_damage", "urgency": "complaint", "description": "路面塌陷",
              "lat": lat, "lon": lon, "allow_duplicate": True}  # fmt: skip
    r = client.post("/api/v1/tickets", json=report, headers={"Origin": EVIL})
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"].endswith("/cross-origin-request")
    # Without Origin, a foreign Referer is refused too; and nothing was created.
    r = client.post("/api/v1/tickets", json=report, headers={"Referer": f"{EVIL}/x"})
    assert r.status_code == 403
    r = client.post("/api/v1/tickets", json=report)  # neither header nor token
    assert r.status_code == 403
    assert client.get("/api/v1/tickets").json() == []
    # From our own pages (same Origin), or with the session's CSRF token, it goes through.
    r = client.post("/api/v1/tickets", json=report, headers={"Origin": "http://testserver"})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/tickets", json=report, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/tickets", json=report, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    # Safe methods are not checked.
    assert client.get("/api/v1/tickets", headers={"Origin": EVIL}).status_code == 200


def test_bearer_token_calls_are_not_affected(client, session) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session, city="320500")
    h = token_for(client, resident)
    with TestClient(client.app) as fresh:  # no cookie at all
        r = fresh.post("/api/v1/tickets/route", json=ROUTE, headers={**h, "Origin": EVIL})
        assert r.status_code == 200, r.text
        r = fresh.post("/api/v1/tickets/route", json=ROUTE, headers={"Origin": EVIL})
        assert r.status_code == 200  # no cookie: nothing a forged request could ride on
    _login(client, resident)  # the cookie is present, but the bearer token authenticates
    r = client.post("/api/v1/tickets/route", json=ROUTE, headers={**h, "Origin": EVIL})
    assert r.status_code == 200, r.text


@pytest.fixture
def small_app(settings, factory):  # type: ignore[no-untyped-def]
    from tongban.contexts import build_node
    from tongban.web.app import create_app

    return create_app(build_node(settings.model_copy(update={"max_body_bytes": 1}), factory))


def test_oversize_body_is_refused_413(small_app) -> None:  # type: ignore[no-untyped-def]
    # The limit never drops below the upload limit (200 kB in tests) plus 1 MiB.
    limit = 200_000 + 1024 * 1024
    big = b"x" * (limit + 1)
    with TestClient(small_app) as c:
        r = c.post(
            "/api/v1/tickets/route", content=big, headers={"content-type": "application/json"}
        )
        assert r.status_code == 413
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["status"] == 413 and "MB" in r.json()["detail"]

        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(limit // 65536 + 2):
                yield b" " * 65536

        r = c.post(
            "/api/v1/tickets/route", content=chunks(), headers={"content-type": "application/json"}
        )
        assert r.status_code == 413, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        # A page gets the Chinese error page.
        r = c.post(
            "/login", content=big, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert r.status_code == 413 and "请求内容过大" in r.text
        assert r.headers["content-type"].startswith("text/html")
        # A body within the limit is untouched.
        assert c.post("/api/v1/tickets/route", json=ROUTE).status_code == 200


@pytest.fixture
def api_key(session) -> str:  # type: ignore[no-untyped-def]
    return open311.create_client(session, "测试客户端")[1]


def _open311(client, api_key, **fields):  # type: ignore[no-untyped-def]
    lat, lon = BORDER_WUJIANG_JIASHAN
    data = {"api_key": api_key, "jurisdiction_id": "320500", "service_code": "road_damage",
            "lat": str(lat), "long": str(lon), "description": "边界道路塌陷", **fields}  # fmt: skip
    return client.post("/open311/v2/requests.json", data=data)


@pytest.mark.parametrize(
    "field,value",
    [
        ("media_url", "javascript:alert(1)"),
        ("media_url", "data:text/html,<script>alert(1)</script>"),
        ("media_url", "//evil.example/x.png"),
        ("media_url", "https://" + "a" * 500 + ".example/x.png"),
        ("address_string", "路" * 201),
        ("description", "坑" * 2001),
        ("email", "a" * 120 + "@example.org"),
        ("phone", "1" * 21),
        ("first_name", "张" * 41),
        ("device_id", "d" * 81),
        ("account_id", "a" * 81),
        ("attribute[urgency]", "u" * 41),
        ("lat", "nan"),
        ("long", "Infinity"),
    ],
)
def test_open311_refuses_bad_fields(client, api_key, field, value) -> None:  # type: ignore[no-untyped-def]
    r = _open311(client, api_key, **{field: value})
    assert r.status_code == 400, r.text
    (err,) = r.json()
    assert err["code"] == 400
    assert field.split("[")[0] in err["description"]
    assert client.get("/open311/v2/requests.json").json() == []


def test_open311_accepts_an_https_media_url(client, api_key) -> None:  # type: ignore[no-untyped-def]
    r = _open311(client, api_key, media_url="https://img.example.org/p/1.jpg")
    assert r.status_code == 200, r.text
    sr = r.json()[0]["service_request_id"]
    (one,) = client.get(f"/open311/v2/requests/{sr}.json").json()
    assert one["media_url"] == "https://img.example.org/p/1.jpg"


def test_no_template_has_inline_script_style_or_handler() -> None:
    """The CSP allows scripts and styles from /static only: no template may rely on an
    inline <script>, <style>, style="", on*="" handler or javascript: URL."""
    from importlib import resources
    from pathlib import Path

    root = Path(str(resources.files("tongban")))
    bad = []
    for path in root.glob("*/templates/**/*.html"):
        text = path.read_text(encoding="utf-8")
        for pattern in (
            r"<script(?![^>]*\bsrc=)",
            r"<style",
            r"\sstyle=",
            r"\son[a-z]+=",
            "javascript:",
        ):
            if re.search(pattern, text):
                bad.append(f"{path.relative_to(root)}: {pattern}")
    assert not bad, bad
