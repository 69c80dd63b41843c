"""Sign-in throttling (issue 10 item 6): strangers slow themselves down, never the owner;
unknown, wrong and throttled usernames are indistinguishable; hammering gets 429."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from tongban.identity import service
from tongban.identity.models import LoginThrottle

from builders import PASSWORD, csrf_of, make_resident, sign_in

ATTACKER = "198.51.100.66"
OWNER = "203.0.113.10"


@pytest.fixture
def client_from(settings, factory) -> Iterator[Callable[..., TestClient]]:
    """A client at a given address, on an app with the given settings."""
    from tongban.contexts import build_node
    from tongban.web.app import create_app

    opened: list[TestClient] = []

    def make(address: str, **overrides: object) -> TestClient:
        app = create_app(build_node(settings.model_copy(update=overrides), factory))
        c = TestClient(app, client=(address, 40000))
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)


def _token(c: TestClient, username: str, password: str):  # type: ignore[no-untyped-def]
    return c.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_strangers_failures_do_not_stop_the_owner(client_from, session):
    owner = make_resident(session)
    session.commit()
    attacker = client_from(ATTACKER)
    statuses = [_token(attacker, owner.username, "wrong-guess-1").status_code for _ in range(12)]
    # Five free failures, a sixth that starts the delay, then the attacker waits.
    assert statuses[:6] == [401] * 6 and set(statuses[6:]) == {429}
    # Even the right password from the throttled client waits …
    assert _token(attacker, owner.username, PASSWORD).status_code == 429
    # … but the owner, from a client of their own, signs in at once: API and page.
    assert _token(client_from(OWNER), owner.username, PASSWORD).status_code == 200
    browser = client_from("203.0.113.11")
    sign_in(browser, owner)
    assert browser.get("/api/v1/me").json()["username"] == owner.username


def test_unknown_wrong_and_throttled_usernames_answer_alike(client_from, session, monkeypatch):
    owner = make_resident(session)
    session.commit()
    # A stranger has hammered the owner's username from elsewhere.
    stranger = client_from(ATTACKER)
    for _ in range(8):
        _token(stranger, owner.username, "wrong-guess-2")
    # From another client, the owner's (throttled elsewhere) username and an unknown one
    # give the same answer to a wrong password, after the same work (one Argon2 check).
    verified: list[str] = []

    class Spy:
        def __init__(self, real):  # type: ignore[no-untyped-def]
            self.real = real

        def verify(self, hash_: str, password: str) -> bool:
            verified.append(password)
            return bool(self.real.verify(hash_, password))

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(self.real, name)

    monkeypatch.setattr(service, "_hasher", Spy(service._hasher))
    probe = client_from("192.0.2.77")
    known = _token(probe, owner.username, "wrong-guess-3")
    unknown = _token(probe, "nobody-such", "wrong-guess-3")
    assert known.status_code == unknown.status_code == 401
    assert known.json() == unknown.json()
    assert known.json()["detail"] == "用户名或密码错误"
    assert known.headers["content-type"] == unknown.headers["content-type"]
    assert verified == ["wrong-guess-3", "wrong-guess-3"]
    # The throttling itself does not depend on whether the username exists.
    seq_known = [_token(probe, owner.username, "x-wrong-4").status_code for _ in range(8)]
    seq_unknown = [_token(probe, "nobody-such", "x-wrong-4").status_code for _ in range(8)]
    assert seq_known[1:] == seq_unknown[1:]  # the first of seq_known was its 2nd failure
    assert 429 in seq_unknown


def test_a_hammering_client_gets_429_problem_json_with_retry_after(client_from, session):
    make_resident(session)
    session.commit()
    c = client_from(ATTACKER, login_client_free_failures=4, login_free_failures=50)
    # Spraying many usernames: the client's own count throttles it.
    answers = [_token(c, f"spray{i}", "Spring2026!") for i in range(6)]
    assert [a.status_code for a in answers[:5]] == [401] * 5
    r = answers[5]
    assert r.status_code == 429
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["type"].endswith("login-throttled") and "秒后再试" in r.json()["detail"]
    # The page answers 429 with the same message and Retry-After.
    csrf = csrf_of(c.get("/login").text)
    page = c.post("/login", data={"username": "spray9", "password": "x", "csrf_token": csrf})
    assert page.status_code == 429 and "秒后再试" in page.text and page.headers["retry-after"]
    # Another client is not affected.
    assert _token(client_from(OWNER), "spray1", "Spring2026!").status_code == 401


def test_the_delay_is_bounded_and_success_forgets_the_pair(client_from, session):
    owner = make_resident(session)
    session.commit()
    # A 2 s delay: the fourth try must come within it, which a loaded machine may not
    # manage in 0.3 s.
    c = client_from(OWNER, login_free_failures=2, login_delay_seconds=2.0)
    assert [_token(c, owner.username, "nope-1234").status_code for _ in range(4)] == [
        401,
        401,
        401,
        429,
    ]
    time.sleep(2.2)
    assert _token(c, owner.username, PASSWORD).status_code == 200
    # The pair's count is forgotten: two failures are free again.
    assert [_token(c, owner.username, "nope-1234").status_code for _ in range(2)] == [401, 401]


def test_the_throttle_table_holds_no_usernames_or_addresses(client_from, session):
    owner = make_resident(session)
    session.commit()
    _token(client_from(ATTACKER), owner.username, "nope-5678")
    rows = session.query(LoginThrottle).all()
    assert {r.scope for r in rows} == {"client", "account-client"}
    for r in rows:
        assert re.fullmatch(r"[0-9a-f]{64}", r.key)
        assert owner.username not in r.key and ATTACKER not in r.key


def test_the_worker_forgets_stale_counts_and_old_sessions(factory, settings, session):
    from datetime import timedelta

    from tongban.db import utcnow
    from tongban.identity import tasks
    from tongban.identity.models import WebSession
    from tongban.worker import periodic_jobs

    assert "identity.prune" in {j.name for j in periodic_jobs()}
    resident = make_resident(session)
    long_ago = utcnow() - timedelta(days=200)
    session.add_all(
        [
            LoginThrottle(key="a" * 64, scope="client", failures=3, last_failure_at=long_ago),
            LoginThrottle(key="b" * 64, scope="client", failures=3, last_failure_at=utcnow()),
        ]
    )
    _, old = service.begin_session(session, resident)
    _, live = service.begin_session(session, resident)
    old.ended_at, old.end_reason = long_ago, "logout"
    session.commit()
    assert tasks.prune(factory, settings) == (1, 1)
    session.expire_all()
    assert {r.key[0] for r in session.query(LoginThrottle).all()} == {"b"}
    assert [s.id for s in session.query(WebSession).filter_by(account_id=resident.id)] == [live.id]


def test_listing_usernames_through_registration_is_throttled(client_from, session):
    """A taken username must be answered (to choose another), but not at speed."""
    from builders import id_number

    taken = make_resident(session)
    session.commit()
    c = client_from(ATTACKER, login_client_free_failures=3)

    def register(username: str):  # type: ignore[no-untyped-def]
        body = {
            "username": username,
            "password": "long-enough-pw",
            "role": "resident",
            "display_name": "周敏",
            "id_number": id_number("330100"),
            "city_code": "330100",
        }
        return c.post("/api/v1/accounts", json=body)

    codes = [register(taken.username).status_code for _ in range(5)]
    assert codes == [409, 409, 409, 409, 429]
    r = register("free.name.1")
    assert r.status_code == 429 and r.headers["retry-after"]
    # Another client registers normally.
    other = client_from(OWNER)
    body = {
        "username": "free.name.2",
        "password": "long-enough-pw",
        "role": "resident",
        "display_name": "周敏",
        "id_number": id_number("330100"),
        "city_code": "330100",
    }
    assert other.post("/api/v1/accounts", json=body).status_code == 201
