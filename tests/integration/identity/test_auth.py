from __future__ import annotations

from sqlalchemy import select

from tongban.identity import service
from tongban.identity.models import ApiToken

from builders import PASSWORD, make_resident


def test_token_me_and_revocation(client, session):
    resident = make_resident(session)
    r = client.post(
        "/api/v1/auth/token", data={"username": resident.username, "password": PASSWORD}
    )
    assert r.status_code == 200
    token = r.json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=h).json()["username"] == resident.username
    # Only the hash is stored.
    stored = session.scalars(select(ApiToken.token_hash)).all()
    assert token not in stored and len(stored[-1]) == 64
    assert client.post("/api/v1/auth/revoke", data={"token": token}, headers=h).status_code == 204
    r = client.get("/api/v1/me", headers=h)
    assert r.status_code == 401 and r.json()["type"].endswith("invalid-token")


def _token(client, username: str) -> str:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_revoke_takes_the_token_from_the_body_never_from_the_url(client, session):
    """Issue 10 item 8: a token in the query string lands in access logs."""
    resident = make_resident(session)
    session.commit()
    caller, target = _token(client, resident.username), _token(client, resident.username)
    h = {"Authorization": f"Bearer {caller}"}
    r = client.post("/api/v1/auth/revoke", params={"token": target}, headers=h)
    assert r.status_code == 422 and r.json()["type"].endswith("token-in-url")
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {target}"}).status_code == 200
    )
    # JSON body.
    r = client.post("/api/v1/auth/revoke", json={"token": target}, headers=h)
    assert r.status_code == 204
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {target}"}).status_code == 401
    )
    # No body: the bearer token of the request itself.
    assert client.post("/api/v1/auth/revoke", headers=h).status_code == 204
    assert client.get("/api/v1/me", headers=h).status_code == 401
    # Someone else's token is unknown to you.
    other = make_resident(session)
    session.commit()
    mine, theirs = _token(client, resident.username), _token(client, other.username)
    r = client.post(
        "/api/v1/auth/revoke",
        data={"token": theirs},
        headers={"Authorization": f"Bearer {mine}"},
    )
    assert r.status_code == 404
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {theirs}"}).status_code == 200
    )


def test_revoke_is_documented_without_a_query_parameter(app):
    op = app.openapi()["paths"]["/api/v1/auth/revoke"]["post"]
    assert not [p for p in op.get("parameters", []) if p["in"] == "query"]
    assert "application/json" in op["requestBody"]["content"]


def test_no_query_parameter_of_the_api_is_a_secret(app):
    """Nothing that authenticates travels in a URL anywhere in the API."""
    secret_words = ("token", "password", "secret", "passwd", "api_key", "apikey")
    found = [
        (path, p["name"])
        for path, ops in app.openapi()["paths"].items()
        for op in ops.values()
        if isinstance(op, dict)
        for p in op.get("parameters", [])
        if p["in"] == "query" and any(w in p["name"].lower() for w in secret_words)
    ]
    assert found == []


def test_passwords_are_argon2_hashed(session):
    resident = make_resident(session)
    assert resident.password_hash.startswith("$argon2")
    assert PASSWORD not in resident.password_hash
    assert service.authenticate(session, resident.username, PASSWORD).id == resident.id


def test_login_page_sets_session_and_requires_csrf(client, session):
    import re

    resident = make_resident(session)
    page = client.get("/login")
    assert page.status_code == 200 and "登录" in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post(
        "/login", data={"username": resident.username, "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 403  # no CSRF token
    r = client.post(
        "/login",
        data={"username": resident.username, "password": "bad-password", "csrf_token": csrf},
    )
    assert r.status_code == 401 and "用户名或密码错误" in r.text  # as the API answers it
    r = client.post(
        "/login",
        data={"username": resident.username, "password": PASSWORD, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/my/cases"
    assert client.get("/api/v1/me").json()["username"] == resident.username
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_resident_registers_through_the_api_and_logs_in(client, session):
    from builders import credit_code, id_number

    ident = id_number("330100")
    body = {
        "username": "new.resident",
        "password": "long-enough-pw",
        "role": "resident",
        "display_name": "周敏",
        "id_number": ident,
        "city_code": "330100",
    }
    r = client.post("/api/v1/accounts", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["jurisdiction_code"] == "330000" and r.json()["role"] == "resident"
    # Registration does not tell whether an ID number already has an account.
    r = client.post("/api/v1/accounts", json={**body, "username": "another"})
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/accounts",
        json={
            **body,
            "username": "xx2",
            "id_number": ident[:-1] + "0" if ident[-1] != "0" else ident[:-1] + "1",
        },
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "id_number"
    r = client.post("/api/v1/accounts", json={**body, "username": "boss", "role": "officer"})
    assert r.status_code == 422
    r = client.post(
        "/api/v1/accounts",
        json={
            "username": "acme",
            "password": "long-enough-pw",
            "role": "enterprise",
            "display_name": "某某公司",
            "credit_code": credit_code("320500"),
            "city_code": "320500",
        },
    )
    assert r.status_code == 201
    r = client.post(
        "/api/v1/auth/token", data={"username": "new.resident", "password": "long-enough-pw"}
    )
    assert r.status_code == 200


def test_registration_page_shows_field_errors_and_logs_in(client, session):
    import re

    from builders import id_number

    page = client.get("/register")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    bad = {
        "csrf_token": csrf,
        "role": "resident",
        "display_name": "吴昊",
        "id_number": "123",
        "city_code": "340100",
        "username": "wuhao",
        "password": "long-enough-pw",
    }
    r = client.post("/register", data=bad)
    assert r.status_code == 422 and "身份证号码无效" in r.text and 'value="吴昊"' in r.text
    r = client.post(
        "/register", data={**bad, "id_number": id_number("340100")}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/my/cases"
    assert client.get("/api/v1/me").json()["username"] == "wuhao"


def test_registration_does_not_reveal_whether_an_id_number_is_registered(client, session):
    """Issue 10 item 6: the answer is the same for a registered and a new number."""
    import re

    from builders import id_number

    taken = make_resident(session).id_number
    session.commit()
    fresh = id_number("330100")

    def register(ident: str, username: str):  # type: ignore[no-untyped-def]
        body = {
            "username": username,
            "password": "long-enough-pw",
            "role": "resident",
            "display_name": "周敏",
            "id_number": ident,
            "city_code": "330100",
        }
        return client.post("/api/v1/accounts", json=body)

    a, b = register(taken, "probe.one"), register(fresh, "probe.two")
    assert a.status_code == b.status_code == 201
    assert set(a.json()) == set(b.json())
    assert "已注册" not in a.text
    # The page too.
    answers = []
    for ident, name in ((taken, "probe.three"), (id_number("330100"), "probe.four")):
        page = client.get("/register")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = client.post(
            "/register",
            data={
                "csrf_token": csrf,
                "role": "resident",
                "display_name": "周敏",
                "id_number": ident,
                "city_code": "330100",
                "username": name,
                "password": "long-enough-pw",
            },
            follow_redirects=False,
        )
        answers.append((r.status_code, r.headers.get("location")))
        client.cookies.clear()
    assert answers[0] == answers[1] == (303, "/my/cases")


WEAK = {
    "12345678": "过于常见",
    "password": "过于常见",
    "        ": "全部是空格",
    "abcdefghijk": "两类字符",
    "abc1    ": "至少 8 位",
}


def test_weak_passwords_are_refused_everywhere_in_chinese(client, session):
    """Issue 10 item 9: registration (API and page), creation by an operator."""
    import re

    import pytest

    from tongban.errors import ValidationFailed

    from builders import id_number

    for weak, reason in WEAK.items():
        body = {
            "username": "weak.one",
            "password": weak,
            "role": "resident",
            "display_name": "周敏",
            "id_number": id_number("330100"),
            "city_code": "330100",
        }
        r = client.post("/api/v1/accounts", json=body)
        assert r.status_code == 422, weak
        messages = [e["message"] for e in r.json()["errors"] if e["field"] == "password"]
        assert any(reason in m for m in messages), (weak, messages)

        page = client.get("/register")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = client.post("/register", data={**body, "csrf_token": csrf})
        assert r.status_code == 422 and reason in r.text, weak
        client.cookies.clear()  # the next API call is not a browser's

        with pytest.raises(ValidationFailed) as e:
            service.create_account(
                session, username="new.clerk", password=weak, role="admin", display_name="管理员"
            )
        assert any(reason in err["message"] for err in e.value.errors)
    # The username itself is refused as a password.
    with pytest.raises(ValidationFailed) as e:
        service.create_account(
            session, username="zhou.min88", password="Zhou.Min88", role="admin", display_name="周"
        )
    assert e.value.errors[0]["message"] == "密码不能与用户名相同"
