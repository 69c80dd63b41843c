"""The holder's wallet (我的证照): their licences, and presentations that disclose only
the claims they choose, as text and as a QR code. Also the officer's list."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import segno
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tongban.errors import NotFound, PermissionDenied, ValidationFailed
from tongban.identity.domain import APPLICANT_ROLES, Role
from tongban.identity.models import Account
from tongban.identity.service import is_proven, require_assurance
from tongban.licences import domain, issuing, sdjwt
from tongban.licences.domain import LicenceStatus, LicenceType
from tongban.licences.models import Licence
from tongban.licences.rejection import LicenceRejected


@dataclass
class Presentation:
    licence: Licence
    ltype: LicenceType
    compact: str
    disclosed: list[str]

    #: True when the holder's device appended a KB-JWT (holder binding).
    bound: bool = False

    @property
    def qr_svg(self) -> str:
        return qr_svg(self.compact)


def qr_svg(text: str) -> str:
    """An inline SVG QR code of `text` (segno; error level L keeps long presentations
    within QR version 40); "" when the text does not fit in any QR code (the page then
    offers the text only)."""
    try:
        return str(segno.make(text, error="l", micro=False).svg_inline(scale=2, border=4))
    except segno.DataOverflowError:
        return ""


def _holder_clause(actor: Account) -> object:
    ident = actor.credit_code if actor.role == Role.ENTERPRISE else actor.id_number
    clauses = [Licence.holder_account_id == actor.id]
    if ident:
        clauses.append((Licence.holder_identifier == ident) & (Licence.holder_type == actor.role))
    return or_(*clauses)


def _require_holder(actor: Account) -> None:
    if actor.role not in {r.value for r in APPLICANT_ROLES}:
        raise PermissionDenied("“我的证照”仅供个人或法人账户使用")
    # Licences are bound to the ID number / credit code: a self-declared one proves
    # nothing (issue 10 item 3).
    require_assurance(actor)


def list_mine(
    session: Session, actor: Account, *, type_code: str | None = None, usable: bool = False
) -> list[Licence]:
    """The licences held by `actor` (by account, or by ID number / credit code for those
    issued from a register before the account existed), newest first; `usable` keeps only
    valid ones within their validity."""
    _require_holder(actor)
    q = select(Licence).where(_holder_clause(actor))  # type: ignore[arg-type]
    if type_code:
        q = q.where(Licence.type_code == type_code)
    if usable:
        from tongban.db import utcnow

        now = utcnow()
        q = q.where(
            Licence.status == LicenceStatus.VALID.value,
            Licence.valid_from <= now,
            or_(Licence.valid_until.is_(None), Licence.valid_until > now),
        )
    return list(session.scalars(q.order_by(Licence.issued_at.desc())))


def get_mine(session: Session, actor: Account, licence_id: uuid.UUID) -> Licence:
    """One of `actor`'s licences; anybody else's is 'not found'."""
    _require_holder(actor)
    lic: Licence | None = session.scalar(
        select(Licence).where(Licence.id == licence_id, _holder_clause(actor))  # type: ignore[arg-type]
    )
    if lic is None:
        raise NotFound("证照不存在或无权查看", type="unknown-licence")
    return lic


def present(
    session: Session, actor: Account, licence_id: uuid.UUID, disclose: list[str]
) -> Presentation:
    """The holder's presentation of one licence disclosing only `disclose` (personal
    fields of the type; the others are always shown)."""
    lic = get_mine(session, actor, licence_id)
    ltype = issuing.get_type(lic.type_code)
    try:
        names = domain.disclosable(ltype, disclose)
    except ValueError as e:
        raise ValidationFailed(str(e), errors=[{"field": "disclose", "message": str(e)}]) from e
    return Presentation(lic, ltype, sdjwt.present(lic.compact, names), names)


def bound_presentation(
    session: Session, actor: Account, licence_id: uuid.UUID, compact: str
) -> Presentation:
    """A presentation of one of `actor`'s licences to which their device has appended a
    KB-JWT (the browser wallet signs it; the node never holds the device key): checked
    to be this licence's issuer-signed JWT with some of its disclosures and a KB-JWT,
    then shown like any presentation. Whether the KB-JWT is right is the verifier's
    check, not the wallet's."""
    lic = get_mine(session, actor, licence_id)
    ltype = issuing.get_type(lic.type_code)
    problem = "出示内容与该证照不符，请重新生成出示码"
    try:
        parsed = sdjwt.parse_sd_jwt(compact)
        issued = sdjwt.parse_sd_jwt(lic.compact)
    except LicenceRejected:
        raise ValidationFailed(problem) from None
    mine = {d.encoded for d in issued.disclosures}
    if (
        parsed.issuer_jwt != issued.issuer_jwt
        or parsed.kb_jwt is None
        or not {d.encoded for d in parsed.disclosures} <= mine
    ):
        raise ValidationFailed(problem)
    names = [d.name for d in parsed.disclosures if d.name]
    return Presentation(lic, ltype, compact, names, bound=True)


def list_for_officer(
    session: Session,
    actor: Account,
    *,
    q: str | None = None,
    status: str | None = None,
    limit: int = 200,
) -> list[Licence]:
    """Licences issued by the officer's authority, newest first; `q` matches the
    identifier, the holder's name or identifier."""
    authority = issuing.officer_authority(session, actor)
    stmt = select(Licence).where(Licence.authority_id == authority.id)
    if status:
        stmt = stmt.where(Licence.status == status)
    if q:
        stmt = stmt.where(
            or_(
                Licence.identifier.contains(q.upper()),
                Licence.holder_name.contains(q),
                Licence.holder_identifier == q.upper(),
            )
        )
    return list(session.scalars(stmt.order_by(Licence.issued_at.desc()).limit(limit)))


def choices_for_matter(
    session: Session, actor: Account, matter: object
) -> dict[str, list[dict[str, str]]]:
    """免提交 on the application form: for each licence type that can stand in for one of
    the matter's materials, the applicant's usable licences as {id, label}."""
    if actor.role not in {r.value for r in APPLICANT_ROLES} or not is_proven(actor):
        return {}
    wanted = {m.licence_type for m in getattr(matter, "materials", []) if m.licence_type}
    out: dict[str, list[dict[str, str]]] = {}
    for code in sorted(wanted):
        ltype = domain.licence_types().get(code)
        if ltype is None:
            continue
        out[code] = [
            {
                "id": str(lic.id),
                "label": f"{ltype.name}（{lic.authority_name}签发，标识 …{lic.identifier[-18:]}）",
            }
            for lic in list_mine(session, actor, type_code=code, usable=True)
        ]
    return out
