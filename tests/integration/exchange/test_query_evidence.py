"""Evidence lookups answered at once (TONGBAN_EVIDENCE_SYNC), across two nodes in one
process over the real signed queries: the officer on node B (苏州) asks 安徽's node A for
a resident's social-insurance record and has the decision in the same request —
answered with the minimised data, or refused for a wrong purpose or without consent —
recorded on both nodes and in the resident's data-use log on A. A provider that is down,
or whose answer does not verify, is asked by message instead (the request stays pending
until it is answered); a lookup signed with a key outside the federation is refused and
decides nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tongban.cases import service as cases
from tongban.config import Settings
from tongban.crypto.signing import Alg, generate
from tongban.evidence import lookup
from tongban.evidence import service as evidence
from tongban.evidence.models import DataAccess, EvidenceRequest
from tongban.exchange import query
from tongban.exchange.models import ExchangeQuery
from tongban.exchange.transport import signed_request

from builders import make_officer, make_register_record, make_resident, upload

GJJ = "YRD-GJJ-0001"  # 住房公积金异地转移接续
GJJ_FORM = {
    "out_center": "合肥住房公积金管理中心",
    "out_account": "12345678",
    "in_center": "苏州市住房公积金管理中心",
    "new_employer": "苏州示范有限公司",
}


class Tamper(httpx.BaseTransport):
    """Routes like `Hosts`, and can alter what comes back."""

    def __init__(self, hosts: Any) -> None:
        self.hosts = hosts
        self.alter: Any = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        r = self.hosts.handle_request(request)
        return self.alter(request, r) if self.alter else r


@pytest.fixture
def nodes(fed: dict[str, Any], hosts: Any, tools: Any) -> Iterator[Any]:
    """A (安徽, the provider) and B (苏州, the officer's node, asking synchronously)."""
    a, b = fed["node-a"], fed["node-b"]
    tamper = Tamper(hosts)
    client = httpx.Client(transport=tamper)
    query.install_client(b.id, client)
    before = b.settings.evidence_sync
    b.settings.evidence_sync = "on"
    yield a, b, tamper, hosts, tools
    b.settings.evidence_sync = before
    query.install_client(b.id, None)
    client.close()


def _submit(a: Any, tools: Any, b: Any, consent: list[str]) -> tuple[Any, Any]:
    with a.session() as s:
        resident = make_resident(s, "340100")
        make_register_record(s, resident, "social_insurance", "340000")
        att = upload(s, resident, tmp=a.upload_root)
        case = cases.submit_online(
            s,
            resident,
            cases.Application(
                matter_code=GJJ,
                competent_jurisdiction="320000",
                competent_city="320500",
                form_data=dict(GJJ_FORM),
                consent=True,
                attachment_ids=[att.id],
                evidence_consent=consent,
            ),
        )
        s.commit()
    tools.drain(a, b)  # the case and its consent reach the competent node
    return case, resident


def _ask(b: Any, case: Any, purpose: str = "housing_fund_transfer") -> EvidenceRequest:
    with b.session() as s:
        officer = make_officer(s, "320500-housing_fund")
        cases.act(s, officer, case.id, "accept")  # evidence only once accepted (受理)
        req, created = evidence.request_evidence(s, officer, case.id, "social_insurance", purpose)
        assert created and req.provider_jurisdiction == "340000"
        s.commit()
        return req


def _requested_messages(b: Any, req: EvidenceRequest) -> int:
    return sum(
        1
        for m in b.outbox(type=evidence.MSG_REQUESTED)
        if m.payload.get("request_id") == str(req.id)
    )


def _lookups(node: Any) -> list[tuple[uuid.UUID, str, str]]:
    with node.session() as s:
        rows = s.scalars(select(ExchangeQuery).where(ExchangeQuery.type == lookup.LOOKUP))
        return [(r.id, r.role, r.outcome) for r in rows]


def test_the_officer_has_the_answer_at_once_recorded_on_both_nodes_and_in_the_log(
    nodes: Any,
) -> None:
    a, b, _, _, tools = nodes
    case, resident = _submit(a, tools, b, ["social_insurance"])
    before_a, before_b = set(_lookups(a)), set(_lookups(b))
    req = _ask(b, case)
    assert req.status == "answered" and req.answered_at is not None
    assert req.data is not None and req.data["months_paid"] == 120
    assert "monthly_base" not in req.data  # minimised as by message
    assert _requested_messages(b, req) == 0  # no message: the query answered it
    [(qid, role, outcome)] = set(_lookups(b)) - before_b
    assert (role, outcome) == ("asked", "answered")
    assert set(_lookups(a)) - before_a == {(qid, "answered", "answered")}
    with a.session() as s:
        log = s.scalar(select(DataAccess).where(DataAccess.request_id == req.id))
        assert log is not None and (log.outcome, log.source) == ("answered", "provider")
        [seen] = evidence.my_data_use(s, s.get(type(resident), resident.id))
        assert (seen.case_number, seen.kind, seen.purpose) == (
            case.number,
            "social_insurance",
            "housing_fund_transfer",
        )


@pytest.mark.parametrize(
    "consent, purpose, reason",
    [
        ([], "housing_fund_transfer", "no-consent"),
        (["household"], "housing_fund_transfer", "consent-scope"),
    ],
)
def test_a_refusal_is_an_answer_at_once_and_is_logged_by_the_provider(
    nodes: Any, consent: list[str], purpose: str, reason: str
) -> None:
    a, b, _, _, tools = nodes
    case, resident = _submit(a, tools, b, consent)
    req = _ask(b, case, purpose)
    assert (req.status, req.reason_code, req.data) == ("refused", reason, None)
    assert req.reason  # the provider's Chinese text
    assert _requested_messages(b, req) == 0
    with a.session() as s:
        [seen] = evidence.my_data_use(s, s.get(type(resident), resident.id))
        assert (seen.outcome, seen.reason_code, seen.fields) == ("refused", reason, [])


def test_a_provider_down_is_asked_by_message_instead(nodes: Any) -> None:
    a, b, _, hosts, tools = nodes
    case, _ = _submit(a, tools, b, ["social_insurance"])
    hosts.down.add(a.host)
    try:
        req = _ask(b, case)
    finally:
        hosts.down.discard(a.host)
    assert req.status == "pending" and _requested_messages(b, req) == 1
    assert ("asked", "unavailable") in {(role, o) for _, role, o in _lookups(b)}
    tools.drain(a, b)
    with b.session() as s:
        got = s.get(EvidenceRequest, req.id)
        assert got is not None and got.status == "answered" and got.data["months_paid"] == 120


def test_an_answer_signed_by_a_foreign_key_is_not_trusted_the_message_goes_instead(
    nodes: Any,
) -> None:
    a, b, tamper, _, tools = nodes
    case, _ = _submit(a, tools, b, ["social_insurance"])
    other = generate(Alg.EDDSA)

    def forge(request: httpx.Request, r: httpx.Response) -> httpx.Response:
        data = json.loads(r.content)
        data["answer"]["data"] = {"months_paid": 999}
        content = json.dumps(data, ensure_ascii=False).encode()
        headers = query.sign_answer(
            200,
            content,
            "application/json",
            other,
            request_digest=request.headers["content-digest"],
            query_id=data["id"],
        )
        return httpx.Response(200, headers=headers, content=content)

    tamper.alter = forge
    req = _ask(b, case)
    tamper.alter = None
    assert req.status == "pending" and req.data is None  # the forged data is not kept
    assert _requested_messages(b, req) == 1
    # A decided it (the lookup reached it); the message gets the same decision again.
    tools.drain(a, b)
    with b.session() as s:
        got = s.get(EvidenceRequest, req.id)
        assert got is not None and got.status == "answered" and got.data["months_paid"] == 120
    with a.session() as s:
        n = s.scalars(select(DataAccess).where(DataAccess.request_id == req.id)).all()
        assert len(n) == 1  # decided and logged once


def test_a_lookup_signed_with_a_key_outside_the_federation_is_refused(nodes: Any) -> None:
    a, b, _, hosts, tools = nodes
    case, _ = _submit(a, tools, b, ["social_insurance"])
    request_id = str(uuid.uuid4())
    env = {
        "id": str(uuid.uuid4()),
        "type": lookup.LOOKUP,
        "source_node": b.id,
        "source_jurisdiction": "320000",
        "target_jurisdiction": "340000",
        "created_at": "2026-11-30T08:00:00+00:00",
        "version": 1,
        "payload": {
            "request_id": request_id,
            "case_number": case.number,
            "matter_code": GJJ,
            "matter_name": "住房公积金异地转移接续",
            "kind": "social_insurance",
            "purpose": "housing_fund_transfer",
            "provider_jurisdiction": "340000",
            "subject": {"identifier": case.applicant_identifier, "type": "resident", "name": "x"},
            "requester": {
                "authority_code": "320500-housing_fund",
                "authority_name": "苏州市住房公积金管理中心",
                "jurisdiction": "320000",
                "officer_name": "冒充者",
            },
            "requested_at": "2026-11-30T08:00:00+00:00",
            "consent": None,
        },
    }
    url = f"http://{a.host}{query.PATH}"
    body, headers = signed_request(env, generate(Alg.EDDSA), url)
    r = hosts.apps[a.host].post(url, content=body, headers=headers)
    assert r.status_code in (401, 403), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "signature-input" in r.headers  # the refusal is signed too
    with a.session() as s:
        assert (
            s.scalar(select(DataAccess).where(DataAccess.request_id == uuid.UUID(request_id)))
            is None
        )


@pytest.mark.parametrize(
    "value, provider, sync",
    [
        ("off", "340000", False),
        ("on", "340000", True),
        ("320000,340000", "340000", True),
        ("320000", "340000", False),
    ],
)
def test_which_providers_are_asked_at_once(value: str, provider: str, sync: bool) -> None:
    assert lookup.sync_allowed(Settings(evidence_sync=value), provider) is sync


def test_the_setting_is_checked() -> None:
    with pytest.raises(ValueError):
        Settings(evidence_sync="yes")
