"""Purpose-bound evidence against a real database (SQLite and PostgreSQL): consent at
submission, the officer's request, the provider's checks, the answer, the log."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from tongban.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tongban.evidence import handlers
from tongban.evidence import service as evidence
from tongban.evidence.models import Consent, DataAccess, EvidenceRequest
from tongban.exchange.models import OutboxMessage

from builders import (
    GJJ,
    GJJ_FORM,
    drain,
    make_case,
    make_clerk,
    make_officer,
    make_register_record,
    make_resident,
    make_supervisor,
    upload,
)

GJJ_AUTH = "320500-housing_fund"
BOTH = ["household", "social_insurance"]


def gjj_case(session, resident=None, consent=BOTH, accept=True, **kw):
    """A 公积金 case; accepted (受理, so that evidence may be asked) once forwarded."""
    resident = resident or make_resident(session, city="340100")
    case = make_case(session, resident, matter=GJJ, form=GJJ_FORM, evidence_consent=consent, **kw)
    if accept and kw.get("dispatch", True):
        accept_case(session, case, GJJ_AUTH)
    return case


def accept_case(session, case, authority):
    from tongban.cases import service as cases

    cases.act(session, make_officer(session, authority), case.id, "accept")
    session.commit()


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def outbox(session, type_):
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.type == type_)))


def ask(session, factory, officer, case, kind="social_insurance", purpose="housing_fund_transfer",
        provider=None):  # fmt: skip
    req, created = evidence.request_evidence(session, officer, case.id, kind, purpose, provider)
    session.commit()
    drain(factory)
    session.expire_all()
    return session.get(EvidenceRequest, req.id), created


# --- consent at submission --------------------------------------------------------------


def test_online_submission_records_the_consent_and_sends_it_to_the_competent_node(session):
    case = gjj_case(session, dispatch=False)
    c = evidence.consent_for(session, case.number)
    assert c is not None
    assert c.scopes == BOTH and c.channel == "online"
    assert c.subject_identifier == case.applicant_identifier
    assert c.given_at == case.submitted_at and c.recorded_by == case.applicant_name
    # Received in 安徽, handled in 江苏: the competent node gets its own copy.
    [msg] = outbox(session, evidence.MSG_CONSENT)
    assert (msg.source_jurisdiction, msg.target_jurisdiction) == ("340000", "320000")
    assert msg.payload["scopes"] == BOTH and msg.payload["case_number"] == case.number


def test_no_scopes_means_no_consent(session):
    case = gjj_case(session, consent=[])
    assert evidence.consent_for(session, case.number) is None
    assert outbox(session, evidence.MSG_CONSENT) == []


@pytest.mark.parametrize(
    "scopes, message",
    [(["dna"], "未知的证明类型：dna"), (["licence_status"], "本事项不涉及调取电子证照状态")],
)
def test_consent_outside_the_catalogue_or_the_matter_is_rejected(session, scopes, message):
    resident = make_resident(session, city="340100")
    with pytest.raises(ValidationFailed) as e:
        gjj_case(session, resident, consent=scopes)
    assert e.value.errors == [{"field": "evidence_consent", "message": message}]


WINDOW_MATTER = "YRD-GJJ-0003"  # 异地购房提取住房公积金: online and window reception
WINDOW_FORM = {
    "house_address": "江苏省苏州市示范路88号",
    "purchase_date": "2026-10-01",
    "total_price": 2000000,
    "amount": 100000,
    "bank_account": "6222020200112233445",
}


def test_window_clerk_records_the_applicants_consent(session):
    from tongban.cases import service as cases

    clerk = make_clerk(session, "310000")
    resident = make_resident(session, city="340100")
    app = cases.Application(
        matter_code=WINDOW_MATTER,
        competent_jurisdiction="320000",
        competent_city="320500",
        form_data=dict(WINDOW_FORM),
        mode="proxy",
        consent=True,
        attachment_ids=[upload(session, clerk).id, upload(session, clerk, "purchase_proof").id],
        evidence_consent=["social_insurance"],
    )
    applicant = cases.WindowApplicant(
        name=resident.display_name,
        identifier=resident.id_number,
        identity_verified=True,
        materials_checked=True,
    )
    case = cases.submit_at_window(session, clerk, applicant, app)
    c = evidence.consent_for(session, case.number)
    assert c is not None and c.channel == "window" and c.scopes == ["social_insurance"]
    assert c.recorded_by == clerk.display_name
    # Received in 上海 for 江苏: the consent copy goes to the competent node.
    [msg] = outbox(session, evidence.MSG_CONSENT)
    assert (msg.source_jurisdiction, msg.target_jurisdiction) == ("310000", "320000")


def test_joint_subtasks_carry_the_consent_too(session):
    case = gjj_case(session, mode="joint", joint_jurisdictions=["330000"])
    assert case.subtasks
    for sub in case.subtasks:
        c = evidence.consent_for(session, sub.number)
        assert c is not None and c.scopes == BOTH


# --- who may ask ------------------------------------------------------------------------


def test_only_an_officer_handling_the_case_may_request(session):
    case = gjj_case(session)
    other_officer = make_officer(session, "320500-public_security")
    supervisor = make_supervisor(session, "320000")
    applicant = session.get(type(other_officer), case.applicant_id)
    with pytest.raises(NotFound):  # cannot even see it
        evidence.request_evidence(
            session, other_officer, case.id, "household", "housing_fund_transfer"
        )
    for actor in (supervisor, applicant):
        with pytest.raises(PermissionDenied):
            evidence.request_evidence(session, actor, case.id, "household", "housing_fund_transfer")
    assert count(session, EvidenceRequest) == 0
    assert outbox(session, evidence.MSG_REQUESTED) == []


def test_a_case_not_yet_forwarded_cannot_ask(session):
    case = gjj_case(session, dispatch=False)
    officer = make_officer(session, GJJ_AUTH)
    with pytest.raises(NotFound):  # officers see a case only once it is delivered
        evidence.request_evidence(session, officer, case.id, "household", "housing_fund_transfer")
    assert outbox(session, evidence.MSG_REQUESTED) == []


# --- the valid path ------------------------------------------------------------------------


def test_a_valid_request_is_answered_with_minimised_data_and_logged(session, factory):
    case = gjj_case(session)
    make_register_record(session, case.applicant_identifier, "social_insurance", "340000")
    officer = make_officer(session, GJJ_AUTH)
    req, created = evidence.request_evidence(
        session, officer, case.id, "social_insurance", "housing_fund_transfer"
    )
    assert created and req.status == "pending" and req.provider_jurisdiction == "340000"
    [msg] = outbox(session, evidence.MSG_REQUESTED)
    assert (msg.source_jurisdiction, msg.target_jurisdiction) == ("320000", "340000")
    assert msg.payload["consent"]["scopes"] == BOTH  # the consent travels with it
    session.commit()
    drain(factory)
    session.expire_all()
    req = session.get(EvidenceRequest, req.id)
    assert req.status == "answered" and req.answered_at is not None
    assert req.data["months_paid"] == 120 and req.data["insured_city"] == "合肥市"
    assert "monthly_base" not in req.data  # the contribution base stays home
    [log] = session.scalars(select(DataAccess).where(DataAccess.request_id == req.id))
    assert log.outcome == "answered" and log.source == "provider"
    assert log.subject_identifier == case.applicant_identifier
    assert log.requester_authority_name == "苏州市住房公积金管理中心"
    assert log.officer_name == officer.display_name
    assert (log.case_number, log.kind, log.purpose) == (
        case.number,
        "social_insurance",
        "housing_fund_transfer",
    )
    assert "monthly_base" not in log.fields and "months_paid" in log.fields


def test_answered_evidence_is_reused_not_asked_again(session, factory):
    case = gjj_case(session)
    make_register_record(session, case.applicant_identifier, "social_insurance", "340000")
    officer = make_officer(session, GJJ_AUTH)
    colleague = make_officer(session, GJJ_AUTH, duty="reviewer")
    first, created = evidence.request_evidence(
        session, officer, case.id, "social_insurance", "housing_fund_transfer"
    )
    # Still pending: asking again returns the pending request.
    again, created_again = evidence.request_evidence(
        session, colleague, case.id, "social_insurance", "housing_fund_transfer"
    )
    assert created and not created_again and again.id == first.id
    session.commit()
    drain(factory)
    session.expire_all()
    reused, created = evidence.request_evidence(
        session, colleague, case.id, "social_insurance", "housing_fund_transfer"
    )
    assert not created and reused.id == first.id and reused.status == "answered"
    assert len(outbox(session, evidence.MSG_REQUESTED)) == 1
    assert count(session, DataAccess, DataAccess.case_number == case.number) == 1


# --- refusals, each with its reason, each logged ---------------------------------------------


def test_missing_consent_is_refused_and_logged(session, factory):
    case = gjj_case(session, consent=[])
    make_register_record(session, case.applicant_identifier, "household", "340000")
    req, _ = ask(session, factory, make_officer(session, GJJ_AUTH), case, "household")
    assert (req.status, req.reason_code) == ("refused", "no-consent")
    assert req.reason == "申请人未就本办件授权调取其数据" and req.data is None
    log = session.scalar(select(DataAccess).where(DataAccess.request_id == req.id))
    assert (log.outcome, log.reason_code, log.fields) == ("refused", "no-consent", [])


def test_consent_not_covering_the_kind_is_refused(session, factory):
    case = gjj_case(session, consent=["household"])
    make_register_record(session, case.applicant_identifier, "social_insurance", "340000")
    req, _ = ask(session, factory, make_officer(session, GJJ_AUTH), case, "social_insurance")
    assert (req.status, req.reason_code) == ("refused", "consent-scope")
    assert "社会保险缴费记录" in req.reason
    log = session.scalar(select(DataAccess).where(DataAccess.request_id == req.id))
    assert (log.outcome, log.reason_code) == ("refused", "consent-scope")


@pytest.mark.parametrize(
    "purpose",
    [
        "school_transfer",  # a real purpose, but not this case's matter
        "qualification_check",  # a purpose that never needs 户籍
        "curiosity",  # not registered
    ],
)
def test_a_purpose_that_does_not_fit_the_matter_is_refused_before_asking(session, factory, purpose):
    case = gjj_case(session)
    officer = make_officer(session, GJJ_AUTH)
    with pytest.raises(ValidationFailed) as e:
        evidence.request_evidence(session, officer, case.id, "household", purpose)
    assert e.value.type == "purpose-not-for-matter"
    assert e.value.errors == [{"field": "purpose", "message": "请选择适用于本办件事项的调取用途"}]
    assert count(session, EvidenceRequest) == 0
    assert outbox(session, evidence.MSG_REQUESTED) == []


@pytest.mark.parametrize(
    "purpose, reason",
    [
        ("school_transfer", "purpose-matter"),
        ("qualification_check", "purpose-kind"),
        ("curiosity", "unknown-purpose"),
    ],
)
def test_the_provider_rechecks_the_purpose_of_a_request_that_reaches_it(session, purpose, reason):
    """A peer that skipped the requester's check (or a forged payload): the provider
    refuses on its own catalogue, and logs it."""
    payload = _peer_payload(purpose=purpose)
    handlers.on_requested(session, payload, PEER_MSG)
    log = session.scalar(
        select(DataAccess).where(DataAccess.request_id == uuid.UUID(payload["request_id"]))
    )
    assert (log.outcome, log.reason_code, log.purpose) == ("refused", reason, purpose)


def test_a_tax_officer_cannot_ask_for_social_insurance_under_another_matters_purpose(session):
    # 个人所得税纳税记录开具: no purpose of the matter covers social-insurance records.
    resident = make_resident(session, city="340100")
    case = make_case(
        session, resident, matter="YRD-SW-0002", form={"start_year": 2024, "end_year": 2025}
    )
    accept_case(session, case, "320500-tax")
    with pytest.raises(ValidationFailed) as e:
        evidence.request_evidence(
            session, make_officer(session, "320500-tax"), case.id, "social_insurance",
            "housing_fund_transfer",
        )  # fmt: skip
    assert e.value.type == "purpose-not-for-matter"
    assert count(session, EvidenceRequest) == 0


# --- only while the case is being handled (受理后、办结前) -------------------------------


def test_a_case_not_yet_accepted_cannot_ask(session):
    case = gjj_case(session, accept=False)
    officer = make_officer(session, GJJ_AUTH)
    with pytest.raises(Conflict) as e:
        evidence.request_evidence(session, officer, case.id, "household", "housing_fund_transfer")
    assert e.value.type == "case-not-in-handling" and "受理后方可调取" in e.value.detail
    panel = evidence.panel(session, officer, case)
    assert not panel["can_request"] and "尚未受理" in panel["closed_reason"]
    assert count(session, EvidenceRequest) == 0
    assert outbox(session, evidence.MSG_REQUESTED) == []


def test_a_decided_case_cannot_ask_any_more(session, factory):
    from tongban.cases import service as cases

    case = gjj_case(session)
    make_register_record(session, case.applicant_identifier, "household", "340000")
    officer = make_officer(session, GJJ_AUTH, duty="approver")
    req, _ = ask(session, factory, officer, case, "household")  # accepted: allowed
    assert req.status == "answered"
    for action in ("start_review", "approve"):
        cases.act(session, officer, case.id, action)
    session.commit()
    with pytest.raises(Conflict) as e:
        evidence.request_evidence(
            session, officer, case.id, "social_insurance", "housing_fund_transfer"
        )
    assert e.value.type == "case-not-in-handling" and "已不在办理中" in e.value.detail
    assert len(outbox(session, evidence.MSG_REQUESTED)) == 1


def test_the_provider_refuses_a_request_for_a_case_no_longer_handled(session):
    """The provider cannot see the case; it refuses what the requester states."""
    make_register_record(session, PEER_SUBJECT, "household", "340000")
    payload = _peer_payload(case_state="approved")
    handlers.on_requested(session, payload, PEER_MSG)
    log = session.scalar(
        select(DataAccess).where(DataAccess.request_id == uuid.UUID(payload["request_id"]))
    )
    assert (log.outcome, log.reason_code) == ("refused", "case-not-in-handling")
    ok = _peer_payload(case_state="under_review")
    handlers.on_requested(session, ok, PEER_MSG)
    log = session.scalar(
        select(DataAccess).where(DataAccess.request_id == uuid.UUID(ok["request_id"]))
    )
    assert log.outcome == "answered"


def test_no_record_at_the_provider_is_refused(session, factory):
    case = gjj_case(session)
    req, _ = ask(session, factory, make_officer(session, GJJ_AUTH), case, "household")
    assert (req.status, req.reason_code) == ("refused", "no-record")
    # A refused request may be asked again later (e.g. once the register is complete).
    make_register_record(session, case.applicant_identifier, "household", "340000")
    req2, created = ask(session, factory, make_officer(session, GJJ_AUTH), case, "household")
    assert created and req2.status == "answered" and req2.id != req.id


# --- idempotency and nodes ---------------------------------------------------------------


def test_a_redelivered_request_is_not_logged_twice_and_gets_the_same_answer(session, factory):
    """Asked again (a redelivery, or the message sent after a lookup whose answer was
    lost), the provider gives the decision it logged; the requester keeps its first."""
    case = gjj_case(session)
    make_register_record(session, case.applicant_identifier, "household", "340000")
    req, _ = ask(session, factory, make_officer(session, GJJ_AUTH), case, "household")
    [msg] = outbox(session, evidence.MSG_REQUESTED)
    answers = len(outbox(session, evidence.MSG_ANSWERED))
    # A transport without this node's inbox would hand the same message over again.
    handlers.on_requested(session, msg.payload, msg)
    handlers.on_answered(
        session, {"request_id": str(req.id), "data": {"name": "篡改"}, "at": msg.payload["requested_at"]}, msg
    )  # fmt: skip
    session.flush()
    assert count(session, DataAccess, DataAccess.request_id == req.id) == 1
    assert answers == 1
    first, again = outbox(session, evidence.MSG_ANSWERED)
    assert again.payload["data"] == first.payload["data"]
    assert session.get(EvidenceRequest, req.id).data["name"] == "测试居民"


PEER_SUBJECT = "340102199003071234"
PEER_MSG = SimpleNamespace(source_jurisdiction="320000", target_jurisdiction="340000")


def _peer_payload(purpose="housing_fund_transfer", **extra):
    """An `evidence.requested` payload as a peer (苏州公积金) sends it to 安徽."""
    return {
        "request_id": str(uuid.uuid4()),
        "case_number": "320500209901010000001",
        "matter_code": GJJ,
        "matter_name": "住房公积金异地转移接续",
        "receiving_jurisdiction": "330000",
        "kind": "household",
        "purpose": purpose,
        "provider_jurisdiction": "340000",
        "subject": {"identifier": PEER_SUBJECT, "type": "resident", "name": "某人"},
        "requester": {
            "authority_code": GJJ_AUTH,
            "authority_name": "苏州市住房公积金管理中心",
            "jurisdiction": "320000",
            "officer_name": "某审批员",
        },
        "requested_at": "2099-01-01T00:00:00+00:00",
        "consent": {
            "case_number": "320500209901010000001",
            "subject": PEER_SUBJECT,
            "scopes": ["household"],
            "given_at": "2098-12-31T00:00:00+00:00",
            "channel": "online",
        },
        **extra,
    }


def test_the_provider_decides_from_the_payload_alone(session):
    """On another node the requester's case, officer and request rows do not exist."""
    subject = "340102199003071234"
    make_register_record(session, subject, "household", "340000")
    payload = {
        "request_id": str(uuid.uuid4()),
        "case_number": "320500209901010000001",  # no such case on this node
        "matter_code": GJJ,
        "matter_name": "住房公积金异地转移接续",
        "receiving_jurisdiction": "330000",
        "kind": "household",
        "purpose": "housing_fund_transfer",
        "provider_jurisdiction": "340000",
        "subject": {"identifier": subject, "type": "resident", "name": "某人"},
        "requester": {
            "authority_code": GJJ_AUTH,
            "authority_name": "苏州市住房公积金管理中心",
            "jurisdiction": "320000",
            "officer_name": "某审批员",
        },
        "requested_at": "2099-01-01T00:00:00+00:00",
        "consent": {
            "case_number": "320500209901010000001",
            "subject": subject,
            "scopes": ["household"],
            "given_at": "2098-12-31T00:00:00+00:00",
            "channel": "online",
        },
    }
    msg = SimpleNamespace(source_jurisdiction="320000", target_jurisdiction="340000")
    handlers.on_requested(session, payload, msg)
    log = session.scalar(
        select(DataAccess).where(DataAccess.request_id == uuid.UUID(payload["request_id"]))
    )
    assert log.outcome == "answered" and log.fields
    sent = {m.type: m for m in session.scalars(select(OutboxMessage))}
    assert sent[evidence.MSG_ANSWERED].target_jurisdiction == "320000"
    # The case was received in 浙江: that node keeps the subject's log complete.
    assert sent[evidence.MSG_LOGGED].target_jurisdiction == "330000"

    # A message claiming an authority of another jurisdiction than its source is refused.
    forged = dict(payload, request_id=str(uuid.uuid4()))
    handlers.on_requested(session, forged, SimpleNamespace(source_jurisdiction="310000", target_jurisdiction="340000"))  # fmt: skip
    log = session.scalar(
        select(DataAccess).where(DataAccess.request_id == uuid.UUID(forged["request_id"]))
    )
    assert (log.outcome, log.reason_code) == ("refused", "unknown-authority")
    # Consent given after the request: refused.
    late = dict(payload, request_id=str(uuid.uuid4()))
    late["consent"] = dict(payload["consent"], given_at="2099-01-02T00:00:00+00:00")
    handlers.on_requested(session, late, msg)
    log = session.scalar(
        select(DataAccess).where(DataAccess.request_id == uuid.UUID(late["request_id"]))
    )
    assert log.reason_code == "consent-late"


def test_data_held_elsewhere_is_logged_at_the_subjects_home_too(session, factory):
    case = gjj_case(session)
    # The applicant (of 安徽) paid contributions in 上海 before moving.
    make_register_record(session, case.applicant_identifier, "social_insurance", "310000")
    req, _ = ask(session, factory, make_officer(session, GJJ_AUTH), case, provider="310000")
    assert req.status == "answered" and req.provider_jurisdiction == "310000"
    [notice] = outbox(session, evidence.MSG_LOGGED)
    assert (notice.source_jurisdiction, notice.target_jurisdiction) == ("310000", "340000")
    assert notice.status == "delivered"
    # One node serves all here, so the notice found the provider's row: logged once.
    assert count(session, DataAccess, DataAccess.request_id == req.id) == 1
    # On the home node of a real federation the notice creates the copy, once.
    copy = dict(notice.payload, request_id=str(uuid.uuid4()))
    handlers.on_access_logged(session, copy, notice)
    handlers.on_access_logged(session, copy, notice)
    rows = list(
        session.scalars(
            select(DataAccess).where(DataAccess.request_id == uuid.UUID(copy["request_id"]))
        )
    )
    assert len(rows) == 1 and rows[0].source == "notice" and rows[0].outcome == "answered"


def test_the_consent_copy_is_kept_once(session):
    payload = {
        "case_number": "340100209901010000009",
        "case_id": None,
        "subject": "340102199003071234",
        "subject_name": "某人",
        "scopes": ["household"],
        "given_at": "2099-01-01T00:00:00+00:00",
        "channel": "online",
        "recorded_by": "某人",
    }
    handlers.on_consent_recorded(session, payload, None)
    handlers.on_consent_recorded(session, dict(payload, scopes=["social_insurance"]), None)
    assert count(session, Consent, Consent.case_number == payload["case_number"]) == 1
    assert evidence.consent_for(session, payload["case_number"]).scopes == ["household"]


# --- the log -------------------------------------------------------------------------------


def test_the_resident_sees_accesses_to_their_data_and_nobody_else_does(session, factory):
    case = gjj_case(session, consent=["household"])
    make_register_record(session, case.applicant_identifier, "household", "340000")
    officer = make_officer(session, GJJ_AUTH)
    ask(session, factory, officer, case, "household")
    ask(session, factory, officer, case, "social_insurance")  # refused: out of scope
    applicant = session.get(type(officer), case.applicant_id)
    log = evidence.my_data_use(session, applicant)
    assert [(a.kind, a.outcome) for a in log] == [
        ("social_insurance", "refused"),
        ("household", "answered"),
    ]  # newest first
    stranger = make_resident(session, city="340100")
    assert evidence.my_data_use(session, stranger) == []
    with pytest.raises(PermissionDenied):
        evidence.my_data_use(session, officer)
    # Supervisors of the jurisdictions involved see it read-only; others do not.
    assert len(evidence.jurisdiction_data_use(session, make_supervisor(session, "340000"))) == 2
    assert evidence.jurisdiction_data_use(session, make_supervisor(session, "320000"), "refused")
    assert evidence.jurisdiction_data_use(session, make_supervisor(session, "330000")) == []


# --- the licence-status adapter ------------------------------------------------------------


def test_licence_status_comes_from_the_licences_context_when_it_offers_a_lookup(
    session, monkeypatch
):
    from datetime import UTC, datetime

    from tongban.evidence import registers
    from tongban.licences import service as licences

    subject = "340102199003071234"
    make_register_record(session, subject, "licence_status", "340000")
    from_register = registers.lookup(session, "licence_status", "340000", subject)
    assert from_register["licences"][0]["identifier"] == "JSZ-1"

    seen = []

    def licences_of_holder(_session, holder, jurisdiction):
        seen.append((holder, jurisdiction))
        return [
            SimpleNamespace(
                identifier="1.2.156.3005.2.X.Y.1.1.Z",
                type_code="no-such-type",
                holder_name="王芳",
                authority_name="合肥市市场监督管理局",
                status="suspended",
                valid_until=datetime(2030, 1, 1, tzinfo=UTC),
            )
        ]

    monkeypatch.setattr(licences, "licences_of_holder", licences_of_holder, raising=False)
    live = registers.lookup(session, "licence_status", "340000", subject)
    assert seen == [(subject, "340000")]
    assert live == {
        "name": "王芳",
        "licences": [
            {
                "type_name": "no-such-type",
                "identifier": "1.2.156.3005.2.X.Y.1.1.Z",
                "issuer": "合肥市市场监督管理局",
                "status": "暂停",
                "valid_until": "2030-01-01",
            }
        ],
    }


# --- consent withdrawal ------------------------------------------------------------------


def test_a_withdrawn_consent_refuses_new_requests_but_keeps_answered_ones(session, factory):
    case = gjj_case(session)  # consent for 户籍 and 社保; received in 安徽, handled in 江苏
    make_register_record(session, case.applicant_identifier, "household", "340000")
    officer = make_officer(session, GJJ_AUTH)
    answered, _ = ask(session, factory, officer, case, "household")
    assert answered.status == "answered"
    applicant = session.get(type(officer), case.applicant_id)
    with pytest.raises(NotFound):  # only the subject may withdraw
        evidence.withdraw_consent(session, make_resident(session, city="340100"), case.number, "household")  # fmt: skip
    for kind in ("household", "social_insurance"):
        evidence.withdraw_consent(session, applicant, case.number, kind)
    session.commit()
    c = evidence.consent_for(session, case.number)
    assert c.active_scopes() == [] and c.scopes == BOTH  # recorded, not erased
    assert [w["kind"] for w in c.withdrawals] == BOTH
    assert all(w["by"] == applicant.display_name for w in c.withdrawals)
    with pytest.raises(ValidationFailed):  # withdrawing twice
        evidence.withdraw_consent(session, applicant, case.number, "household")
    # The competent node's copy follows (here the same node: the message is idempotent).
    sent = outbox(session, evidence.MSG_WITHDRAWN)
    assert [(m.source_jurisdiction, m.target_jurisdiction) for m in sent] == [
        ("340000", "320000")
    ] * 2
    drain(factory)
    # Not retroactive: the answered request is reused and stays in the log.
    again, created = evidence.request_evidence(session, officer, case.id, "household", "housing_fund_transfer")  # fmt: skip
    assert not created and again.id == answered.id and again.status == "answered"
    assert [a.outcome for a in evidence.my_data_use(session, applicant)] == ["answered"]
    # A request not yet made is refused, and the panel says why.
    with pytest.raises(Conflict) as e:
        evidence.request_evidence(session, officer, case.id, "social_insurance", "housing_fund_transfer")  # fmt: skip
    assert e.value.type == "consent-withdrawn" and "撤回" in e.value.detail
    [opt] = [o for o in evidence.panel(session, officer, case)["options"] if o.kind.code == "social_insurance"]  # fmt: skip
    assert opt.withdrawn_at is not None and not opt.consented
    assert len(outbox(session, evidence.MSG_REQUESTED)) == 1


def test_a_withdrawal_reaches_the_competent_nodes_copy(session):
    handlers.on_consent_recorded(
        session,
        {
            "case_number": "320500209901010000009",
            "case_id": None,
            "subject": PEER_SUBJECT,
            "subject_name": "某人",
            "scopes": ["household", "social_insurance"],
            "given_at": "2098-12-31T00:00:00+00:00",
            "channel": "online",
            "recorded_by": "某人",
        },
        None,
    )
    payload = {"case_number": "320500209901010000009", "subject": PEER_SUBJECT,
               "kind": "household", "at": "2099-01-01T00:00:00+00:00", "by": "某人"}  # fmt: skip
    handlers.on_consent_withdrawn(session, payload, None)
    handlers.on_consent_withdrawn(session, payload, None)  # redelivered: once
    handlers.on_consent_withdrawn(session, dict(payload, subject="340102199003070000", kind="social_insurance"), None)  # fmt: skip
    c = evidence.consent_for(session, "320500209901010000009")
    assert c.active_scopes() == ["social_insurance"] and len(c.withdrawals) == 1
