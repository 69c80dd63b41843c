"""A peer node is a party, not a friend (issue 10, items 1 and 2): signed messages from a
valid node of the federation, over the real signed inbox, that try to make this node
serve a file outside its upload directory, rewrite a case it has no part in, or store a
state outside the state machine — each refused with its own reason, nothing written.
Two nodes: A serves 上海 310000 and 安徽 340000, B 江苏 320000 and 浙江 330000."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tongban.cases import service as cases
from tongban.cases.attachments import BadBlobPath, blob_path, serve_attachment
from tongban.cases.models import Attachment, Case
from tongban.contexts import registry
from tongban.errors import NotFound
from tongban.exchange import service as exchange
from tongban.exchange.models import InboxMessage
from tongban.exchange.transport import signed_request

from builders import SIMPLE_FORM, SIMPLE_MATTER, make_officer, make_resident, upload

SECRET = b"%PDF-1.4 a file outside the upload directory\n"


def _key(node: Any) -> Any:
    with node.session() as s:
        key = exchange.node_key(s, node.id)
        s.commit()
        return key


def _post(hosts: Any, sender: Any, receiver: Any, env: dict[str, Any]) -> Any:
    uri = f"http://{receiver.host}/exchange/v1/inbox"
    body, headers = signed_request(env, _key(sender), uri)
    return hosts.apps[receiver.host].post(uri, content=body, headers=headers)


def _envelope(msg_type: str, source: str, target: str, node: str, payload: dict[str, Any]) -> Any:
    return {
        "id": str(uuid.uuid4()),
        "type": msg_type,
        "source_node": node,
        "source_jurisdiction": source,
        "target_jurisdiction": target,
        "created_at": datetime.now(UTC).isoformat(),
        "payload": payload,
    }


def _next_status(node: Any, number: str, action: str, state: str, **extra: Any) -> dict[str, Any]:
    """A well-formed `case.status_changed` moving `number` (as `node` holds it) one step."""
    with node.session() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert case is not None
        seq = len(case.events) + 1
        from_state = case.state
        form = dict(case.form_data)
    at = datetime.now(UTC).isoformat()
    return {
        "number": number,
        "state": state,
        "seq": seq,
        "action": action,
        "comment": "",
        "event": {
            "id": str(uuid.uuid4()),
            "seq": seq,
            "action": action,
            "from_state": from_state,
            "to_state": state,
            "actor_name": "某人",
            "actor_role": "officer",
            "comment": "",
            "at": at,
        },
        "case": {
            "state": state,
            "handoff": "delivered",
            "result_text": None,
            "form_data": form,
            "deadline_flag": "ok",
            "accepted_at": at,
            "deadline": None,
            "closed_at": None,
        },
        **extra,
    }


def _case_state(node: Any, number: str) -> tuple[str, int, int]:
    with node.session() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert case is not None
        return case.state, len(case.events), len(case.attachments)


def _inbox_count(node: Any) -> int:
    with node.session() as s:
        return int(s.scalar(select(func.count()).select_from(InboxMessage)) or 0)


def _submit_local_to_a(a: Any) -> str:
    """A case received on A for an authority of 上海, also served by A: B has no part in it."""
    with a.session() as s:
        resident = make_resident(s, "340100")
        att = upload(s, resident, tmp=a.upload_root)
        case = cases.submit_online(
            s,
            resident,
            cases.Application(
                matter_code=SIMPLE_MATTER,
                competent_jurisdiction="310000",
                competent_city="310000",
                form_data=dict(SIMPLE_FORM),
                consent=True,
                attachment_ids=[att.id],
            ),
        )
        s.commit()
        return case.number


def test_a_path_instead_of_a_hash_is_refused_and_never_served(
    tools: Any, fed: dict[str, Any], hosts: Any, tmp_path: Path
) -> None:
    """The receiving node (a legitimate party) sends a resubmission whose material's
    "sha256" is the path of a file outside B's upload directory: refused (422) before
    anything is written; no attachment row names it; no download serves it."""
    a, b = fed["node-a"], fed["node-b"]
    case, _ = tools.submit(a)
    tools.drain(a, b)
    with b.session() as s:  # B's officer asks for a correction; A learns it
        officer = make_officer(s, _authority_of(b, case.number))
        s.commit()
        cases.act(s, officer, case.id, "request_correction", "请补正")
        s.commit()
    tools.drain(a, b)
    secret = tmp_path / "secret.pdf"
    secret.write_bytes(SECRET)
    before = _case_state(b, case.number)
    inbox = _inbox_count(b)
    for bad in (str(secret), "../../../../../../etc/passwd", "/etc/passwd", "A" * 64):
        payload = _next_status(
            a,
            case.number,
            "resubmit",
            "submitted",
            attachments=[
                {
                    "material_code": "id_card",
                    "filename": "x.pdf",
                    "sha256": bad,
                    "size": len(SECRET),
                    "content_type": "application/pdf",
                }
            ],
        )
        env = _envelope("case.status_changed", "340000", "320000", "node-a", payload)
        r = _post(hosts, a, b, env)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith("exchange/bad-payload") and "sha256" in r.json()["detail"]
    assert _case_state(b, case.number) == before
    assert _inbox_count(b) == inbox
    with b.session() as s:
        names = set(s.scalars(select(Attachment.sha256)))
        assert all(len(n) == 64 and "/" not in n for n in names)
        # Even a row that names a path (written before this fix) serves nothing.
        row = Attachment(
            material_code="id_card",
            filename="x.pdf",
            content_type="application/pdf",
            size=1,
            sha256=str(secret),
        )
        with pytest.raises(NotFound):
            serve_attachment(b.settings.upload_dir, row)


def test_blob_path_only_ever_names_a_file_under_the_upload_dir(tmp_path: Path) -> None:
    root = tmp_path / "uploads"
    good = "ab" * 32
    assert blob_path(root, good) == (root / "ab" / good).resolve()
    for bad in ("/etc/passwd", "../" * 8 + "etc/passwd", "AB" * 32, "ab" * 31, good + "\n", ""):
        with pytest.raises(BadBlobPath):
            blob_path(root, bad)
    # A directory of the store that is a link to elsewhere is not followed out of it.
    root.mkdir()
    (root / "cd").symlink_to(tmp_path)
    with pytest.raises(BadBlobPath):
        blob_path(root, "cd" * 32)


def test_a_node_serving_neither_party_cannot_rewrite_a_case(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    """B signs a perfectly formed status change for a case received and handled on A
    (340000 -> 310000): refused (403), the case unchanged."""
    a, b = fed["node-a"], fed["node-b"]
    number = _submit_local_to_a(a)
    tools.drain(a, b)
    before = _case_state(a, number)
    inbox = _inbox_count(a)
    payload = _next_status(a, number, "accept", "accepted")
    for source in ("320000", "330000"):
        env = _envelope("case.status_changed", source, "310000", "node-b", payload)
        r = _post(hosts, b, a, env)
        assert r.status_code == 403, r.text
        assert r.json()["type"].endswith("exchange/not-allowed"), r.json()
    # Claiming a source it does not serve is refused by the signed inbox as before.
    env = _envelope("case.status_changed", "310000", "310000", "node-b", payload)
    assert _post(hosts, b, a, env).status_code == 403
    assert _case_state(a, number) == before
    assert _inbox_count(a) == inbox


def test_the_competent_node_cannot_take_the_applicant_s_steps(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    """B is the competent node of a case received on A: it may move the case by the
    authority's steps, but a rating (the applicant's step) from B is refused."""
    a, b = fed["node-a"], fed["node-b"]
    case, _ = tools.submit(a)
    tools.drain(a, b)
    before = _case_state(a, case.number)
    payload = _next_status(a, case.number, "rate", "rated", rating={"score": 1, "comment": "差"})
    payload["event"]["from_state"] = "delivered"  # a well-formed step, from the wrong node
    env = _envelope("case.status_changed", "320000", "340000", "node-b", payload)
    r = _post(hosts, b, a, env)
    assert r.status_code == 403 and r.json()["type"].endswith("exchange/not-allowed")
    assert _case_state(a, case.number) == before
    # The same node's legitimate step (accept) is applied.
    payload = _next_status(a, case.number, "accept", "accepted")
    env = _envelope("case.status_changed", "320000", "340000", "node-b", payload)
    r = _post(hosts, b, a, env)
    assert r.status_code == 200, r.text
    assert _case_state(a, case.number)[0] == "accepted"


def test_an_invalid_state_is_refused_and_the_case_still_answers(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    case, resident = tools.submit(a)
    tools.drain(a, b)
    before = _case_state(a, case.number)
    good = _next_status(a, case.number, "accept", "accepted")
    bad_payloads = []
    for path, value in (
        (("state",), "hacked"),
        (("case", "state"), "hacked"),
        (("event", "to_state"), "hacked"),
        (("case", "deadline_flag"), "<script>"),
        (("seq",), "2"),
        (("event", "comment"), "x" * 30_000),
        (("extra",), 1),
    ):
        p = copy.deepcopy(good)
        target = p
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        bad_payloads.append(p)
    for p in bad_payloads:
        env = _envelope("case.status_changed", "320000", "340000", "node-b", p)
        r = _post(hosts, b, a, env)
        assert r.status_code == 422, (p, r.text)
        assert r.json()["type"].endswith("exchange/bad-payload")
    # Steps the state machine does not allow: a jump, and a step from a state the case
    # is not in.
    jump = _next_status(a, case.number, "approve", "approved")
    lie = _next_status(a, case.number, "approve", "approved")
    lie["event"]["from_state"] = "under_review"
    for p in (jump, lie):
        env = _envelope("case.status_changed", "320000", "340000", "node-b", p)
        r = _post(hosts, b, a, env)
        assert r.status_code == 422 and r.json()["type"].endswith("exchange/bad-payload"), r.text
    assert _case_state(a, case.number) == before
    with a.session() as s:
        stored = cases.get_case(s, resident, case.id)
        assert stored.state == "submitted"


def test_a_message_of_an_unknown_version_is_refused_with_its_own_reason(
    tools: Any, fed: dict[str, Any], hosts: Any
) -> None:
    """Issue 11: B signs a well-formed step under a schema version A does not know:
    refused (422 unknown-version) before its payload is read, nothing written; the same
    step as version 1 (or naming none) is applied."""
    a, b = fed["node-a"], fed["node-b"]
    case, _ = tools.submit(a)
    tools.drain(a, b)
    before = _case_state(a, case.number)
    inbox = _inbox_count(a)
    payload = _next_status(a, case.number, "accept", "accepted")
    for version in (2, 999):
        env = _envelope("case.status_changed", "320000", "340000", "node-b", payload)
        env["version"] = version
        r = _post(hosts, b, a, env)
        assert r.status_code == 422, r.text
        assert r.json()["type"].endswith("exchange/unknown-version"), r.json()
        assert "case.status_changed" in r.json()["detail"] and str(version) in r.json()["detail"]
    # Not a version at all: the envelope itself is malformed.
    for version in ("1", 0, True):
        env = _envelope("case.status_changed", "320000", "340000", "node-b", payload)
        env["version"] = version
        r = _post(hosts, b, a, env)
        assert r.status_code == 400 and r.json()["type"].endswith("exchange/bad-message"), r.text
    assert _case_state(a, case.number) == before
    assert _inbox_count(a) == inbox
    env = _envelope("case.status_changed", "320000", "340000", "node-b", payload)
    env["version"] = 1
    r = _post(hosts, b, a, env)
    assert r.status_code == 200, r.text
    assert _case_state(a, case.number)[0] == "accepted"


def test_a_refused_message_is_a_dead_letter_on_the_sender(tools: Any, fed: dict[str, Any]) -> None:
    """Over HTTP (422 -> dead at once) and on local delivery (dead with the reason)."""
    a, b = fed["node-a"], fed["node-b"]
    case, _ = tools.submit(a)
    tools.drain(a, b)
    bad = _next_status(a, case.number, "accept", "hacked")
    with a.session() as s:
        remote = exchange.send(s, "case.status_changed", "340000", "320000", bad)
        local = exchange.send(s, "case.status_changed", "340000", "310000", bad)
        s.commit()
    a.dispatch()
    (r,) = a.outbox(id=remote.id)
    (loc,) = a.outbox(id=local.id)
    assert r.status == "dead" and r.attempts == 1 and "bad-payload" in (r.last_error or "")
    assert loc.status == "dead" and loc.attempts == 1 and "bad-payload" in (loc.last_error or "")


def test_every_message_type_declares_its_schema_and_authoriser() -> None:
    registry()  # every context, so every handler
    assert exchange.handler_types()  # the contexts registered theirs
    assert exchange.uncovered_types() == frozenset()


def _authority_of(node: Any, number: str) -> str:
    from tongban.regions import service as regions

    with node.session() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert case is not None
        return regions.get_authority(s, case.authority_id).code
