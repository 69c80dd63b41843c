"""The two routes of a case submission (upload, POST /api/v1/cases) do their session,
caller check, service and commit in ONE thread-pool trip (web.deps.Unit). What the
dependencies did before must hold exactly: the same refusals of a bad caller, a caller
refused before the body's validation errors are told, a rollback with nothing
half-written on a failure, the session closed on every path."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import anyio.to_thread
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from tongban.cases import api as cases_api
from tongban.cases.models import Attachment, Case
from tongban.exchange.models import OutboxMessage

from builders import (
    TINY_PDF,
    make_resident,
    online_application,
    token_for,
)


def _upload(client, headers, **data):
    form = {"material_code": "id_card", **data}
    return client.post(
        "/api/v1/attachments",
        headers=headers,
        data=form,
        files={"file": ("id.pdf", TINY_PDF, "application/pdf")},
    )


def _counts(session):
    session.expire_all()
    return tuple(
        session.scalar(select(func.count()).select_from(m))
        for m in (Case, OutboxMessage, Attachment)
    )


@pytest.fixture
def sessions(app) -> Iterator[list[tuple[Session, list[bool]]]]:
    """Every session the app opens, with whether it was closed."""
    made: list[tuple[Session, list[bool]]] = []
    real = app.state.session_factory

    def tracked() -> Session:
        s = real()
        closed: list[bool] = []
        close = s.close

        def recording_close() -> None:
            closed.append(True)
            close()

        s.close = recording_close  # type: ignore[method-assign]
        made.append((s, closed))
        return s

    app.state.session_factory = tracked
    yield made
    app.state.session_factory = real


@pytest.fixture
def trips(monkeypatch) -> list[str]:
    """The name of every function sent to the thread pool."""
    seen: list[str] = []
    real = anyio.to_thread.run_sync

    async def counting(func, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return seen


def _all_closed(sessions) -> bool:
    return bool(sessions) and all(closed for _s, closed in sessions)


def test_a_submission_takes_one_thread_pool_trip_a_request(client, session, trips, sessions):
    h = token_for(client, make_resident(session))
    trips.clear()
    att = _upload(client, h)
    assert att.status_code == 201, att.text
    assert att.json()["sha256"] and att.json()["material_code"] == "id_card"
    assert len(trips) == 1, trips
    trips.clear()
    r = client.post("/api/v1/cases", json=online_application(att.json()["id"]), headers=h)
    assert r.status_code == 201, r.text
    assert len(trips) == 1, trips
    assert r.json()["events"][0]["action"] == "submit"
    assert [a["id"] for a in r.json()["attachments"]] == [att.json()["id"]]
    assert _all_closed(sessions)


@pytest.mark.parametrize(
    "headers, kind",
    [
        ({}, "unauthenticated"),
        ({"Authorization": "Bearer not-a-token"}, "invalid-token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "unauthenticated"),
    ],
)
def test_a_bad_caller_is_refused_on_both_routes(client, session, sessions, headers, kind):
    before = _counts(session)
    for r in (
        _upload(client, headers),
        client.post("/api/v1/cases", json=online_application(None), headers=headers),
    ):
        assert r.status_code == 401, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["type"].endswith(kind)
    assert _counts(session) == before
    assert _all_closed(sessions)


def test_a_revoked_token_is_refused_at_once(client, session):
    h = token_for(client, make_resident(session))
    att = _upload(client, h).json()["id"]
    token = h["Authorization"].split(" ", 1)[1]
    assert client.post("/api/v1/auth/revoke", data={"token": token}, headers=h).status_code == 204
    before = _counts(session)
    for r in (
        _upload(client, h),
        client.post("/api/v1/cases", json=online_application(att), headers=h),
    ):
        assert r.status_code == 401 and r.json()["type"].endswith("invalid-token"), r.text
    assert _counts(session) == before


def test_the_caller_is_refused_before_the_body_is_judged(client, session, sessions):
    """As when `CurrentUser` was a dependency: a bad caller with an invalid body gets the
    401, not the body's 422; a good caller gets the 422 naming the field."""
    bad = {"Authorization": "Bearer not-a-token"}
    r = client.post("/api/v1/cases", json=online_application(None, consent="maybe"), headers=bad)
    assert r.status_code == 401 and r.json()["type"].endswith("invalid-token"), r.text
    r = client.post(
        "/api/v1/attachments", headers=bad, data={"material_code": "id_card"}
    )  # no file
    assert r.status_code == 401 and r.json()["type"].endswith("invalid-token"), r.text
    h = token_for(client, make_resident(session))
    before = _counts(session)
    r = client.post("/api/v1/cases", json=online_application(None, consent="maybe"), headers=h)
    assert r.status_code == 422 and "consent" in [e["field"] for e in r.json()["errors"]]
    r = client.post("/api/v1/attachments", headers=h, data={"material_code": "id_card"})
    assert r.status_code == 422 and "file" in [e["field"] for e in r.json()["errors"]]
    r = _upload(client, h, material_code="")
    assert r.status_code == 422 and "material_code" in [e["field"] for e in r.json()["errors"]]
    assert _counts(session) == before
    assert _all_closed(sessions)


def test_malformed_json_is_a_422_whoever_sends_it(client, session):
    """JSON that does not parse is refused before any dependency ran, as before."""
    for headers in (
        {"Authorization": "Bearer not-a-token"},
        token_for(client, make_resident(session)),
    ):
        r = client.post(
            "/api/v1/cases",
            content=b"{not json",
            headers={**headers, "content-type": "application/json"},
        )
        assert r.status_code == 422, r.text


def test_a_failure_after_the_case_was_written_rolls_everything_back(
    client, session, sessions, monkeypatch
):
    h = token_for(client, make_resident(session))
    att = _upload(client, h).json()["id"]
    before = _counts(session)
    reached: list[int] = []

    def failing(actor, case):  # type: ignore[no-untyped-def]
        reached.append(len(case.events))  # the case and its first event exist by now
        raise StaleDataError("changed meanwhile")

    monkeypatch.setattr(cases_api, "case_public", failing)
    sessions.clear()
    r = client.post("/api/v1/cases", json=online_application(att), headers=h)
    assert reached == [1]
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    assert _counts(session) == before
    claimed = session.scalar(select(Attachment.case_id).where(Attachment.id == uuid.UUID(att)))
    assert claimed is None
    assert _all_closed(sessions)
    monkeypatch.undo()
    r = client.post("/api/v1/cases", json=online_application(att), headers=h)
    assert r.status_code == 201, r.text
