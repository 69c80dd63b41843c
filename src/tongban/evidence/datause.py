"""Uses of a person's data outside evidence requests, and the log entry every use makes:
other contexts declare (at import) what they disclose and for what (a medical insurance
answer at a hospital counter), record each use they decide, and the person hears of it
(kernel.events.DataUsed). The evidence requests' own accesses are announced the same way
(handlers.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.db import utcnow
from tongban.evidence import domain
from tongban.evidence.models import DataAccess
from tongban.kernel import events


@dataclass(frozen=True)
class DataUseKind:
    """A kind of personal data another context discloses when it answers a synchronous
    query (medical insurance at a hospital counter), labelled as 我的数据使用记录 shows
    it; `fields` are (key, label) of what the answer carries."""

    code: str
    label: str
    fields: tuple[tuple[str, str], ...] = ()

    @property
    def field_labels(self) -> dict[str, str]:
        return dict(self.fields)


@dataclass(frozen=True)
class DataUsePurpose:
    code: str
    label: str


_use_kinds: dict[str, DataUseKind] = {}
_use_purposes: dict[str, DataUsePurpose] = {}


def declare_data_use(kind: DataUseKind, purposes: Iterable[DataUsePurpose]) -> None:
    """Declare (at import) a kind of data a context discloses about a person and the
    purposes it does so for, so that the person's log names them in Chinese."""
    if domain.catalogue().kind(kind.code) is not None:
        raise ValueError(f"{kind.code} is an evidence kind of the catalogue")
    _use_kinds[kind.code] = kind
    for p in purposes:
        _use_purposes[p.code] = p


def data_use_labels() -> tuple[dict[str, Any], dict[str, Any]]:
    """Kinds and purposes by code, as the data-use log labels them: the evidence
    catalogue's and those declared by other contexts."""
    cat = domain.catalogue()
    return {**cat.kinds, **_use_kinds}, {**cat.purposes, **_use_purposes}


def record_data_use(
    session: Session,
    *,
    use_id: uuid.UUID,
    subject_identifier: str,
    subject_name: str,
    user_code: str,
    user_name: str,
    user_jurisdiction: str,
    operator_name: str,
    kind: str,
    purpose: str,
    holder_jurisdiction: str,
    answered: bool,
    requested_at: Any,
    reference: str = "",
    matter_name: str = "",
    fields: Iterable[str] = (),
    reason_code: str | None = None,
    reason: str | None = None,
) -> DataAccess:
    """One use of a person's data decided by this node outside an evidence request (a
    synchronous query it answered), in that person's 我的数据使用记录: who used it (an
    institution, its operator), what, for what, and whether it was given. `use_id` (the
    query's id) keys it: the same use is never logged twice."""
    if kind not in _use_kinds or purpose not in _use_purposes:
        raise ValueError(f"undeclared data use {kind}/{purpose}")
    found = session.scalar(select(DataAccess).where(DataAccess.request_id == use_id))
    if found is not None:
        return found
    access = DataAccess(
        request_id=use_id,
        subject_identifier=subject_identifier,
        subject_name=subject_name[:80],
        requester_authority_code=user_code[:60],
        requester_authority_name=user_name[:80],
        requester_jurisdiction=user_jurisdiction,
        officer_name=operator_name[:80],
        case_number=reference[:32],
        matter_name=matter_name[:120],
        kind=kind,
        purpose=purpose,
        provider_jurisdiction=holder_jurisdiction,
        outcome=(domain.Status.ANSWERED if answered else domain.Status.REFUSED).value,
        reason_code=reason_code,
        reason=reason,
        fields=sorted(fields) if answered else [],
        requested_at=requested_at,
        at=utcnow(),
        source="provider",
    )
    session.add(access)
    session.flush()
    announce_use(session, access)
    return access


def announce_use(session: Session, access: DataAccess) -> None:
    """Tell whoever listens (notifications) that a use of a person's data was logged here."""
    kinds, purposes = data_use_labels()
    kind, purpose = kinds.get(access.kind), purposes.get(access.purpose)
    events.publish(
        session,
        events.DataUsed(
            use_id=access.request_id,
            subject_identifier=access.subject_identifier,
            user_name=access.requester_authority_name,
            kind_label=str(getattr(kind, "label", access.kind)),
            purpose_label=str(getattr(purpose, "label", access.purpose)),
            answered=access.outcome == domain.Status.ANSWERED.value,
        ),
    )
