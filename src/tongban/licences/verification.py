"""The one verification used by the API, the pages, the CLI's online mode and cases:
a presentation checked against this node's trust list and status lists."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.config import Settings
from tongban.kernel.node import settings_of
from tongban.licences import domain
from tongban.licences.keybinding import ANY_VERIFIER, BindingPolicy
from tongban.licences.models import Licence
from tongban.licences.rejection import REASON_TEXT, LicenceRejected, RejectReason
from tongban.licences.sdjwt import parse_sd_jwt
from tongban.licences.status import NodeStatuses
from tongban.licences.trust import local_trust
from tongban.licences.trustlist import TrustList
from tongban.licences.verify import UNCHECKED, StatusSource, verify_licence

#: Registered claims reported in their own fields, not among `claims`.
_REGISTERED = frozenset({"iss", "iat", "nbf", "exp", "vct", "licence_id"})
STATUS_NAMES = {0: "valid", 1: "revoked", 2: "suspended", UNCHECKED: "unchecked"}
#: Reasons given after the issuer's signature was checked: the payload is genuine, so
#: which licence it is may be shown.
_SIGNED_REASONS = frozenset(
    {
        RejectReason.EXPIRED,
        RejectReason.NOT_YET_VALID,
        RejectReason.REVOKED,
        RejectReason.SUSPENDED,
        RejectReason.STATUS_UNAVAILABLE,
        RejectReason.KEY_BINDING_MISSING,
        RejectReason.NOT_HOLDER_BOUND,
        RejectReason.KEY_BINDING_BAD_SIGNATURE,
        RejectReason.KEY_BINDING_STALE,
        RejectReason.KEY_BINDING_AUDIENCE_MISMATCH,
        RejectReason.KEY_BINDING_NONCE_MISMATCH,
        RejectReason.KEY_BINDING_SD_HASH_MISMATCH,
    }
)
#: What `Verification.binding` says, and how the pages say it.
BOUND, UNBOUND = "holder_bound", "unbound"
BINDING_TEXT = {
    BOUND: "已核验持有人绑定",
    UNBOUND: "未核验持有人绑定（不记名出示）",
}


@dataclass
class Verification:
    """The answer to "is this licence valid?", with the reason when it is not."""

    valid: bool
    reason: str | None = None
    reason_text: str = "验证通过"
    detail: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    issuer: str | None = None
    jurisdiction: str | None = None
    licence_id: str | None = None
    vct: str | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    status: str | None = None
    type_code: str | None = None
    type_name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    #: For a valid licence: BOUND (a KB-JWT by the holder's device key verified) or
    #: UNBOUND (accepted as a bearer presentation); None when not valid.
    binding: str | None = None
    #: Whether the verifier required holder binding.
    binding_required: bool = False

    @property
    def binding_text(self) -> str:
        return BINDING_TEXT.get(self.binding or "", "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "reason": self.reason,
            "reason_text": self.reason_text,
            "detail": self.detail,
            "claims": self.claims,
            "issuer": self.issuer,
            "jurisdiction": self.jurisdiction,
            "licence_id": self.licence_id,
            "vct": self.vct,
            "type": self.type_code,
            "type_name": self.type_name,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "status": self.status,
            "binding": self.binding,
            "binding_text": self.binding_text,
            "binding_required": self.binding_required,
        }


def _dt(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None


def check(
    compact: str,
    trust: TrustList,
    statuses: StatusSource | None,
    *,
    now: int | None = None,
    binding: BindingPolicy | None = None,
) -> Verification:
    """Verify `compact` against `trust` and `statuses` and the holder `binding` the
    verifier asks for (None: unbound accepted); never raises for a bad licence."""
    at = int(time.time()) if now is None else now
    policy = binding or BindingPolicy()
    try:
        v = verify_licence(compact, trust, statuses, now=at, binding=policy)
    except LicenceRejected as e:
        out = Verification(
            valid=False,
            reason=e.reason.value,
            reason_text=REASON_TEXT[e.reason],
            detail=e.detail,
            binding_required=policy.required,
        )
        if e.reason in _SIGNED_REASONS:
            _describe_signed(out, compact, trust)
        if e.reason is RejectReason.REVOKED:
            out.status = "revoked"
        elif e.reason is RejectReason.SUSPENDED:
            out.status = "suspended"
        return out
    ltype = domain.type_by_vct(v.vct)
    claims = {k: val for k, val in v.claims.items() if k not in _REGISTERED}
    if ltype is not None:  # the type's order, whatever order the disclosures came in
        rank = {f.name: n for n, f in enumerate(ltype.fields)}
        claims = dict(sorted(claims.items(), key=lambda kv: rank.get(kv[0], -1)))
    return Verification(
        valid=True,
        claims=claims,
        issuer=v.issuer,
        jurisdiction=v.jurisdiction,
        licence_id=v.licence_id,
        vct=v.vct,
        issued_at=_dt(v.iat),
        expires_at=_dt(v.exp),
        status=STATUS_NAMES.get(v.status, str(v.status)),
        type_code=ltype.code if ltype else None,
        type_name=ltype.name if ltype else None,
        labels=_labels(ltype),
        binding=BOUND if v.holder_bound else UNBOUND,
        binding_required=policy.required,
    )


def _labels(ltype: domain.LicenceType | None) -> dict[str, str]:
    base = {"licence_id": "证照标识", "licence_type": "证照类型", "issuing_authority": "发证机关"}
    base.update({"iss": "签发方", "iat": "签发时间", "nbf": "生效时间", "exp": "有效期至"})
    base.update({"vct": "证照类型 URI"})
    if ltype:
        base.update(ltype.labels)
    return base


def _describe_signed(out: Verification, compact: str, trust: TrustList) -> None:
    """For a licence whose signature verified but that is not valid now: which one."""
    try:
        payload = parse_sd_jwt(compact).jws.payload
    except LicenceRejected:
        return
    iss, vct = payload.get("iss"), payload.get("vct")
    out.issuer = iss if isinstance(iss, str) else None
    issuer = trust.issuer(out.issuer) if out.issuer else None
    out.jurisdiction = issuer.jurisdiction if issuer else None
    lid = payload.get("licence_id")
    out.licence_id = lid if isinstance(lid, str) else None
    out.vct = vct if isinstance(vct, str) else None
    out.issued_at = _dt(payload.get("iat"))
    out.expires_at = _dt(payload.get("exp"))
    ltype = domain.type_by_vct(out.vct or "")
    if ltype:
        out.type_code, out.type_name = ltype.code, ltype.name


def verifier_id(public_url: str) -> str:
    """The `aud` naming this node's verification page and API in a KB-JWT."""
    return public_url.rstrip("/") + "/licences/verify"


def binding_policy(
    *,
    require: bool | None = None,
    nonce: str | None = None,
    audience: str | None = None,
    settings: Settings,
) -> BindingPolicy:
    """The holder binding a verifier of this deployment asks for: `require` as the
    verifier chose (None: TONGBAN_LICENCE_REQUIRE_BINDING), always required when the
    deployment forbids unbound presentation (TONGBAN_LICENCE_ALLOW_UNBOUND=false);
    `nonce` the verifier's challenge (None: time-window mode, TONGBAN_LICENCE_KB_WINDOW);
    accepted audiences: this node's verifier id, `audience`, and the generic value."""
    s = settings
    required = s.licence_require_binding if require is None else require
    audiences = {ANY_VERIFIER, verifier_id(s.public_url)}
    if audience:
        audiences.add(audience)
    return BindingPolicy(
        required=required or not s.licence_allow_unbound,
        nonce=nonce or None,
        audiences=frozenset(audiences),
        window=s.licence_kb_window,
    )


def verify_presentation(
    session: Session,
    compact: str,
    *,
    now: int | None = None,
    binding: BindingPolicy | None = None,
) -> Verification:
    """Verify a presentation with this node's trust list and status lists; `binding`
    (default: the deployment's policy, binding_policy()) says what holder binding the
    verifier requires."""
    policy = binding if binding is not None else binding_policy(settings=settings_of(session))
    return check(compact, local_trust(session), NodeStatuses(session), now=now, binding=policy)


def verify_stored(session: Session, lic: Licence, *, now: int | None = None) -> Verification:
    """Verify a licence this node holds (its full SD-JWT), as any verifier would. The
    node reads it from its own table, not from a presenter, so no holder binding is asked
    (免提交: the applicant's session has authenticated the holder)."""
    return verify_presentation(session, lic.compact, now=now, binding=BindingPolicy())


def licence_for(session: Session, v: Verification) -> Licence | None:
    """The stored licence a verification names, when this node holds it."""
    if not v.licence_id:
        return None
    return session.scalar(select(Licence).where(Licence.identifier == v.licence_id))
