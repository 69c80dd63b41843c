"""A clerk's change of an assurance level made on the window page (/window/identity) is an
account event in the audit chain, by that clerk, like the service call it goes through
(issue 11: every change of an account's level is history)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tongban.audit import service as audit
from tongban.audit.domain import field_digest
from tongban.identity import service as identity

from builders import csrf_of, make_clerk, make_resident, sign_in


def test_the_window_page_records_the_level_change_in_the_chain(
    client: TestClient, session: Session
) -> None:
    resident = make_resident(session, assurance_level="self_declared")
    clerk = make_clerk(session, "320500")
    session.commit()
    sign_in(client, clerk)
    page = client.get("/window/identity")
    found = client.post(
        "/window/identity",
        data={"identifier": resident.id_number, "csrf_token": csrf_of(page.text)},
    )
    done = client.post(
        "/window/identity/verify",
        data={
            "account_id": str(resident.id),
            "identifier": resident.id_number,
            "method": "id_card_reader",
            "note": "本人到场",
            "seen": "1",
            "csrf_token": csrf_of(found.text),
        },
    )
    assert done.status_code == 200 and "已核验" in done.text, done.text

    session.expire_all()
    [event] = [e for e in identity.account_events(session, resident) if e.action != "created"]
    assert (event.action, event.from_level, event.to_level) == (
        "window_check",
        "self_declared",
        "window_verified",
    )
    assert event.actor_id == clerk.id
    entries = [
        (e, json.loads(e.body))
        for e in audit.about(session, f"account:{resident.id}")
        if e.kind == "account.event"
    ]
    entry, body = entries[-1]
    assert entry.actor == f"account:{clerk.id}"
    assert body["action"] == "window_check" and body["to_level"] == "window_verified"
    assert body["evidence"]["method"] == "id_card_reader"
    assert body["reason_digest"] == field_digest(entry.alg, event.reason)
    assert audit.verify(session).ok
