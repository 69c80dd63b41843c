"""A hostile peer over real HTTP between two node processes (`tongban serve --node …`,
made by `tongban exchange init-local`), issue 10 items 1 and 2: node 320000 holds a
valid key of the federation and signs its messages correctly, yet

- a status change for a case received and handled on node 310000 (a case it has no part
  in) is refused 403 and the case is unchanged;
- a resubmission of a case it did receive, whose material's "sha256" is a path, is
  refused 422 and no attachment row is written.

Bounded: two processes, fixed timeouts, stopped at the end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from nodes import PeerNode, federation, submit_case, wait_until
from tongban.exchange.transport import signed_request

from builders import SIMPLE_FORM, status_changed


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PeerNode]]:
    root = tmp_path_factory.mktemp("hostile")
    with federation(root, 2, port_start=24000, port_step=41) as procs:
        yield procs


def _case(node: PeerNode, number: str) -> tuple[str, int, int]:
    ((state, events, atts),) = node.sql(
        "SELECT c.state,"
        " (SELECT count(*) FROM case_event e WHERE e.case_id = c.id),"
        " (SELECT count(*) FROM attachment a WHERE a.case_id = c.id)"
        " FROM service_case c WHERE c.number = :n",
        n=number,
    )
    return str(state), int(events), int(atts)


def _delivered(node: PeerNode, number: str) -> bool:
    """The case is on `node` and its hand-over recorded (the `forwarded` event)."""
    rows = node.sql("SELECT handoff FROM service_case WHERE number = :n", n=number)
    return rows == [("delivered",)]


def _post(
    http: httpx.Client, sender: PeerNode, receiver: PeerNode, source: str, payload: dict[str, Any]
) -> httpx.Response:
    uri = f"{receiver.url}/exchange/v1/inbox"
    env = {
        "id": str(uuid.uuid4()),
        "type": "case.status_changed",
        "source_node": sender.node_id,
        "source_jurisdiction": source,
        "target_jurisdiction": receiver.jurisdiction,
        "created_at": datetime.now(UTC).isoformat(),
        "payload": payload,
    }
    body, headers = signed_request(env, sender.key(), uri)
    return http.post(uri, content=body, headers=headers)


def test_a_correctly_signed_peer_cannot_rewrite_or_plant_files(nodes: dict[str, PeerNode]) -> None:
    sh, js = nodes["310000"], nodes["320000"]
    with httpx.Client(timeout=30) as http:
        # A case received and handled on 上海's node: 江苏's node has no part in it.
        local = submit_case(http, sh, "310000")
        wait_until("the local case delivered", lambda: _delivered(sh, local["number"]), 90)
        before = _case(sh, local["number"])
        _, events, _ = before
        r = _post(
            http,
            js,
            sh,
            "320000",
            status_changed(
                local["number"], events + 1, "accept", "submitted", "accepted", SIMPLE_FORM
            ),
        )
        assert r.status_code == 403, r.text
        assert r.json()["type"].endswith("exchange/not-allowed")
        assert _case(sh, local["number"]) == before

        # A case 江苏 received for 上海: 江苏 is its receiving node, but a material named
        # by a path instead of a SHA-256 is refused before anything is written.
        mine = submit_case(http, js, "310000")
        wait_until("江苏's case on 上海's node", lambda: _delivered(sh, mine["number"]), 90)
        before = _case(sh, mine["number"])
        _, events, _ = before
        payload = status_changed(
            mine["number"], events + 1, "resubmit", "correction_requested", "submitted", SIMPLE_FORM
        )
        payload["attachments"] = [
            {
                "material_code": "id_card",
                "filename": "passwd.pdf",
                "sha256": "../../../../../../etc/passwd",
                "size": 10,
                "content_type": "application/pdf",
            }
        ]
        r = _post(http, js, sh, "320000", payload)
        assert r.status_code == 422, r.text
        assert r.json()["type"].endswith("exchange/bad-payload") and "sha256" in r.json()["detail"]
        assert _case(sh, mine["number"]) == before
        assert sh.sql("SELECT count(*) FROM attachment WHERE length(sha256) <> 64") == [(0,)]
