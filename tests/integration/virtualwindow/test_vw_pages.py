"""The virtual window's pages on one node (it serves every jurisdiction: the signed
queries are answered in-process, through the same checks): a clerk starts a session, the
officer's queue notices it and the officer takes it, the room's JSON endpoints answer
each side, and a resident, another clerk and another authority's officer are refused."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tongban.catalog import service as catalog
from tongban.regions import service as regions

from builders import SIMPLE_MATTER, csrf_of, make_clerk, make_officer, make_resident, sign_in

JSON = {"Accept": "application/json"}


def _officer(session: Session, city: str = "340100") -> Any:
    matter = catalog.get_matter(session, SIMPLE_MATTER)
    auth = regions.competent_authority(
        session, matter.authority_type, matter.authority_level, city[:2] + "0000", city
    )
    return make_officer(session, auth.code)


def test_a_session_from_start_to_the_officers_room(
    app: Any, client: TestClient, session: Session
) -> None:
    clerk, other = make_clerk(session, "310000"), make_clerk(session, "310000")
    officer, elsewhere = _officer(session), _officer(session, "320500")
    resident = make_resident(session, "340100")
    session.commit()

    sign_in(client, clerk)
    page = client.get("/virtual-window")
    assert page.status_code == 200 and "发起远程窗口" in page.text
    r = client.post(
        "/virtual-window",
        data={"csrf_token": csrf_of(page.text), "matter_code": SIMPLE_MATTER, "city_code": ""},
    )
    assert r.status_code == 422 and "city_code" in r.text  # a city is required
    r = client.post(
        "/virtual-window",
        data={
            "csrf_token": csrf_of(page.text),
            "matter_code": SIMPLE_MATTER,
            "city_code": "340100",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    room = r.headers["location"]
    sid = room.rsplit("/", 1)[-1]
    view = client.get(f"{room}/sync", headers=JSON).json()
    assert view["state"] == "queued" and view["position"] == 1
    assert "identifier_full" not in view["identity"]
    csrf = csrf_of(client.get(room).text)
    refused = client.post(
        f"{room}/act",
        data={"csrf_token": csrf, "op": "form", "args": json.dumps({"values": {"x": "1"}})},
        headers=JSON,
    )
    assert refused.status_code in (409, 422)  # not live yet (nor a field of the form)
    assert refused.headers["content-type"].startswith("application/problem+json")

    with TestClient(app) as other_client:
        sign_in(other_client, other)
        assert other_client.get(room, headers=JSON).status_code == 404
    with TestClient(app) as res:
        sign_in(res, resident)
        assert res.get("/virtual-window", headers=JSON).status_code == 403
        assert res.get("/virtual-window/queue", headers=JSON).status_code == 403
    with TestClient(app) as far:
        sign_in(far, elsewhere)  # 苏州's housing-fund officer: not this session's queue
        assert far.get("/virtual-window/queue/waiting", headers=JSON).json() == {"waiting": []}
        assert far.get(f"/virtual-window/officer/s/{sid}", headers=JSON).status_code == 404

    with TestClient(app) as off:
        sign_in(off, officer)
        assert sid in off.get("/virtual-window/queue/waiting", headers=JSON).json()["waiting"]
        queue = off.get("/virtual-window/queue")
        assert "接入下一位" in queue.text
        r = off.post(
            "/virtual-window/queue/take",
            data={"csrf_token": csrf_of(queue.text)},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"].endswith(sid)
        oroom = off.get(r.headers["location"])
        assert oroom.status_code == 200 and 'data-side="officer"' in oroom.text
        ocsrf = csrf_of(oroom.text)
        r = off.post(
            f"/virtual-window/officer/s/{sid}/act",
            data={"csrf_token": ocsrf, "op": "lock", "args": json.dumps({"field": "loan_city"})},
            headers=JSON,
        )
        assert r.status_code == 200 and r.json()["locked"] == ["loan_city"]

    r = client.post(
        f"{room}/act",
        data={
            "csrf_token": csrf,
            "op": "form",
            "args": json.dumps({"values": {"loan_city": "合肥"}}),
        },
        headers=JSON,
    )
    assert r.status_code == 422 and r.json()["type"].endswith("field-locked")
    r = client.post(
        f"{room}/act",
        data={
            "csrf_token": csrf,
            "op": "form",
            "args": json.dumps({"values": {"proof_purpose": "其他"}}),
        },
        headers=JSON,
    )
    assert r.status_code == 200 and r.json()["form"] == {"proof_purpose": "其他"}
    # Without the CSRF token nothing is relayed.
    r = client.post(f"{room}/act", data={"op": "chat", "args": "{}"}, headers=JSON)
    assert r.status_code == 403
