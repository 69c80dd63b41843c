"""Result documents of cases: what a decision says, generated once when it is taken and
stored by its hash (tongban.files), so the bytes a QR code verifies never change; the
public verification by the token printed in that QR; the window's 受理回执."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.calendar import service as calendar
from tongban.cases import documents
from tongban.cases.attachments import blob_path, write_blob
from tongban.cases.domain import Action, CaseState
from tongban.cases.models import Case, CaseDocument
from tongban.db import utcnow
from tongban.errors import NotFound
from tongban.kernel.node import settings_of

#: Which document a step issues, by the action and the state it leaves.
_KIND_OF = {
    (Action.REFUSE, CaseState.SUBMITTED): "refusal",
    (Action.ISSUE_RESULT, CaseState.APPROVED): "approval",
    (Action.ISSUE_RESULT, CaseState.DENIED): "denial",
}
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def verify_url(session: Session, token: str) -> str:
    """The public URL at which a document with `token` is verified."""
    return f"{settings_of(session).public_url.rstrip('/')}/verify/documents/{token}"


def follow_url(session: Session, case: Case) -> str:
    """Where the applicant follows a case (the QR of the 受理回执)."""
    return f"{settings_of(session).public_url.rstrip('/')}/my/cases/{case.id}"


def document_kind(action: Action, from_state: CaseState) -> str | None:
    """The kind of result document step `action` taken from `from_state` issues, if any."""
    return _KIND_OF.get((action, from_state))


def _decision_text(case: Case, kind: str, reason: str) -> str:
    if kind == "approval":
        return (case.result_text or "").strip() or "准予办理。"
    # A refusal and a denial state their reasons (the machine required them); a denial's
    # result text, where the officer wrote one, comes after the denial's own reasons.
    denial = next((e.comment for e in reversed(case.events) if e.action == Action.DENY.value), "")
    parts = [reason] if kind == "refusal" else [denial, (case.result_text or "").strip()]
    text = "\n".join(p for p in parts if p and p != "不予办理决定书")
    return text or reason or "不符合法定条件。"


def issue(session: Session, case: Case, kind: str, reason: str = "") -> CaseDocument:
    """Generate the result document of `case`, store it and record it (the caller's step
    has just been taken)."""
    token = secrets.token_urlsafe(24)
    issued = utcnow()
    decision = documents.Decision(
        kind=kind,
        case_number=case.number,
        authority=case.authority_name,
        applicant=case.applicant_name,
        matter=case.matter_name,
        issued_on=calendar.local_date(issued),
        text=_decision_text(case, kind, reason),
        verify_url=verify_url(session, token),
    )
    data = documents.render_decision(decision)
    digest = write_blob(session, Path(settings_of(session).upload_dir), data)
    doc = CaseDocument(
        case_id=case.id,
        kind=kind,
        title=decision.title,
        token=token,
        sha256=digest,
        size=len(data),
        issued_at=issued,
    )
    case.documents.append(doc)
    session.flush()
    return doc


def document_of(case: Case, document_id: str) -> CaseDocument:
    """One of `case`'s documents (the caller has checked who may see the case)."""
    doc = next((d for d in case.documents if str(d.id) == document_id), None)
    if doc is None:
        raise NotFound("文书不存在", type="unknown-document")
    return doc


def document_path(session: Session, doc: CaseDocument) -> Path:
    path = blob_path(settings_of(session).upload_dir, doc.sha256)
    if not path.is_file():
        raise NotFound("文书文件暂不可用", type="unknown-document")
    return path


def download_name(case: Case, doc: CaseDocument) -> str:
    return f"{doc.title}-{case.number}.pdf"


@dataclass(frozen=True)
class Verification:
    """What the public verify page shows: only what the document itself prints."""

    genuine: bool
    title: str = ""
    case_number: str = ""
    authority: str = ""
    matter: str = ""
    applicant: str = ""
    issued_on: str = ""
    sha256: str = ""


def verify(session: Session, token: str) -> Verification:
    """Whether `token` (from a document's QR code) names a document issued here."""
    if not 16 <= len(token) <= 64 or not set(token) <= _TOKEN_CHARS:
        return Verification(genuine=False)
    doc = session.scalar(select(CaseDocument).where(CaseDocument.token == token))
    if doc is None:
        return Verification(genuine=False)
    case = doc.case
    day = calendar.local_date(doc.issued_at)
    return Verification(
        genuine=True,
        title=doc.title,
        case_number=case.number,
        authority=case.authority_name,
        matter=case.matter_name,
        applicant=_masked_name(case.applicant_name),
        issued_on=f"{day.year}年{day.month}月{day.day}日",
        sha256=doc.sha256,
    )


def _masked_name(name: str) -> str:
    """A person's name as a public page may show it: the first character, then stars."""
    return name[:1] + "*" * max(1, len(name) - 1) if name else ""


def receipt(session: Session, case: Case, material_names: dict[str, str]) -> bytes:
    """The window's 受理回执 of `case` (rendered on request: it says what the case says)."""
    from tongban.regions import service as regions

    try:
        office = regions.get_city(session, case.receiving_city).name + "政务服务窗口"
    except NotFound:
        office = "政务服务窗口"
    return documents.render_receipt(
        documents.Receipt(
            case_number=case.number,
            matter=case.matter_name,
            applicant=case.applicant_name,
            receiving_office=office,
            authority=case.authority_name,
            received_on=calendar.local_date(case.submitted_at),
            time_limit_days=case.time_limit_days,
            materials=[
                f"{material_names.get(a.material_code, a.material_code)}（{a.filename}）"
                for a in case.attachments
            ],
            follow_url=follow_url(session, case),
        )
    )
