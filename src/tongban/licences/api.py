"""JSON API of e-licences: types, issuance (direct and bulk), status changes, the holder's
licences and presentations, verification, the trust list and the status lists."""

from __future__ import annotations

import uuid
from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from tongban.errors import NotFound
from tongban.identity.domain import APPLICANT_ROLES
from tongban.identity.models import Account
from tongban.kernel.node import settings_of
from tongban.licences import service, shortlinks, status, wallet
from tongban.licences.models import Licence, StatusListToken
from tongban.licences.schemas import (
    HolderKeyCreate,
    HolderKeyPublic,
    HolderKeyRegistered,
    LicenceIssue,
    LicencePublic,
    LicenceSearch,
    LicenceTypePublic,
    PresentationCreate,
    PresentationPublic,
    StatusChange,
    StatusListRef,
    VerifyRequest,
    VerifyResult,
)
from tongban.types import NonNegInt32
from tongban.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/api/v1", tags=["licences"])

JWT = "application/jwt"
STATUSLIST_JWT = "application/statuslist+jwt"


def licence_public(lic: Licence) -> LicencePublic:
    ltype = service.get_type(lic.type_code)
    return LicencePublic.model_validate(
        {
            "id": lic.id,
            "identifier": lic.identifier,
            "type_code": lic.type_code,
            "type_name": ltype.name,
            "holder_type": lic.holder_type,
            "holder_name": lic.holder_name,
            "holder_identifier": lic.holder_identifier,
            "jurisdiction_code": lic.jurisdiction_code,
            "authority_name": lic.authority_name,
            "claims": lic.claims,
            "issued_at": lic.issued_at,
            "valid_from": lic.valid_from,
            "valid_until": lic.valid_until,
            "status": lic.status,
            "status_list": {"idx": lic.status_index, "uri": lic.status_uri},
            "kid": lic.kid,
            "alg": lic.alg,
            "source": lic.source,
            "sd_jwt": lic.compact,
            "cnf_kid": lic.cnf_kid,
            "events": lic.events,
        }
    )


def _request(body: LicenceIssue) -> service.IssueRequest:
    return service.IssueRequest(
        type_code=body.type_code,
        holder_identifier=body.holder_identifier,
        holder_name=body.holder_name,
        holder_type=body.holder_type,
        claims=body.claims,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
    )


@router.get("/licence-types", response_model=list[LicenceTypePublic])
def licence_types() -> object:
    """Every licence type: fields (personal ones are selectively disclosable), validity,
    the issuing authority type, the GB/T 36904 type code and the SD-JWT VC `vct`."""
    return [
        {**asdict(t), "fields": [asdict(f) for f in t.fields], "holders": list(t.holders)}
        for t in service.list_types()
    ]


@router.post("/licences", response_model=LicencePublic, status_code=201)
def issue(body: LicenceIssue, actor: CurrentUser, session: SessionDep) -> LicencePublic:
    """An officer of the issuing authority type issues a licence in their jurisdiction."""
    return licence_public(service.issue(session, actor, _request(body)))


@router.post("/licences/bulk", response_model=list[LicencePublic], status_code=201)
def bulk(body: list[LicenceIssue], actor: CurrentUser, session: SessionDep) -> object:
    """Issue licences from an existing register: all or nothing; a bad row rejects the
    whole list with every row's problems (`rows.<n>.<field>`) in the problem+json."""
    return [
        licence_public(x) for x in service.bulk_issue(session, actor, [_request(b) for b in body])
    ]


@router.get("/licences", response_model=list[LicencePublic])
def officer_list(actor: CurrentUser, session: SessionDep, status: str | None = None) -> object:
    """Licences issued by the officer's authority, newest first. To search by holder,
    POST /licences/search: an ID number never travels in a URL."""
    return [licence_public(x) for x in wallet.list_for_officer(session, actor, status=status)]


@router.post("/licences/search", response_model=list[LicencePublic])
def officer_search(body: LicenceSearch, actor: CurrentUser, session: SessionDep) -> object:
    """Licences of the officer's authority matching an identifier, a holder's name or
    a holder's ID number (in the body, not the URL), newest first."""
    return [
        licence_public(x)
        for x in wallet.list_for_officer(session, actor, q=body.q, status=body.status)
    ]


@router.post("/licences/verify", response_model=VerifyResult)
def verify(body: VerifyRequest, session: SessionDep) -> object:
    """Is this licence valid? 200 with `valid` and, when not, the exact `reason`
    (bad_signature, unknown_issuer, expired, not_yet_valid, revoked, suspended,
    tampered_disclosure, malformed, status_unavailable; with holder binding:
    key_binding_missing, not_holder_bound, key_binding_bad_signature, key_binding_stale,
    key_binding_audience_mismatch, key_binding_nonce_mismatch,
    key_binding_sd_hash_mismatch) and the disclosed claims. `binding` says whether the
    holder binding was verified (`holder_bound`) or the presentation was accepted as a
    bearer one (`unbound`): pass `require_binding` and your `nonce` to insist on it."""
    policy = service.binding_policy(
        require=body.require_binding,
        nonce=body.nonce,
        audience=body.audience,
        settings=settings_of(session),
    )
    return service.verify_presentation(session, body.presentation, binding=policy).as_dict()


def _visible(session: SessionDep, actor: Account, licence_id: uuid.UUID) -> Licence:
    if actor.role in {r.value for r in APPLICANT_ROLES}:
        return service.get_mine(session, actor, licence_id)
    return service.get_for_officer(session, actor, licence_id)


@router.get("/licences/{licence_id}", response_model=LicencePublic)
def get_licence(licence_id: uuid.UUID, actor: CurrentUser, session: SessionDep) -> LicencePublic:
    """One licence, to its holder or to an officer who manages it."""
    return licence_public(_visible(session, actor, licence_id))


@router.post("/licences/{licence_id}/status", response_model=LicencePublic)
def change_status(
    licence_id: uuid.UUID, body: StatusChange, actor: CurrentUser, session: SessionDep
) -> LicencePublic:
    """Suspend, reinstate or revoke (reason required; revoked is final)."""
    return licence_public(
        service.change_status(session, actor, licence_id, body.action, body.reason)
    )


@router.get("/my/licences", response_model=list[LicencePublic])
def my_licences(actor: CurrentUser, session: SessionDep) -> object:
    """The caller's own licences (residents and enterprises)."""
    return [licence_public(x) for x in service.list_mine(session, actor)]


@router.get("/my/holder-keys", response_model=list[HolderKeyPublic])
def holder_keys(actor: CurrentUser, session: SessionDep) -> object:
    """The caller's device keys (newest first; withdrawn ones with `revoked_at`)."""
    return service.list_keys(session, actor)


@router.post("/my/holder-keys", response_model=HolderKeyRegistered, status_code=201)
def register_holder_key(
    body: HolderKeyCreate, actor: CurrentUser, session: SessionDep
) -> HolderKeyRegistered:
    """Register the public JWK of a key the caller's device made and keeps (EC P-256 for
    ES256, or Ed25519; never a private key): it becomes the current key, and the caller's
    licences are re-issued with it in `cnf.jwk` (listed in `rebound`)."""
    key, rebound = service.register_key(session, actor, body.jwk, body.label)
    return HolderKeyRegistered(
        key=HolderKeyPublic.model_validate(key), rebound=[lic.id for lic in rebound]
    )


@router.delete("/my/holder-keys/{key_id}", response_model=list[uuid.UUID])
def withdraw_holder_key(key_id: uuid.UUID, actor: CurrentUser, session: SessionDep) -> object:
    """Withdraw a device key (lost or replaced device); the licences bound to it are
    re-issued bound to the next current key, or unbound. Returns their ids."""
    return [lic.id for lic in service.withdraw_key(session, actor, key_id)]


@router.post(
    "/my/licences/{licence_id}/presentations", response_model=PresentationPublic, status_code=201
)
def present(
    licence_id: uuid.UUID, body: PresentationCreate, actor: CurrentUser, session: SessionDep
) -> PresentationPublic:
    """A presentation of one of the caller's licences that discloses only `disclose`."""
    p = service.present(session, actor, licence_id, body.disclose)
    return PresentationPublic(
        licence_id=p.licence.id,
        identifier=p.licence.identifier,
        disclosed=p.disclosed,
        presentation=p.compact,
        cnf_kid=p.licence.cnf_kid,
    )


@router.get("/trust-list", response_class=Response, responses={200: {"content": {JWT: {}}}})
def trust_list(session: SessionDep) -> Response:
    """The federation trust list: a JWS (`typ: trustlist+jwt`, media type
    application/jwt) signed by the federation root key, listing every jurisdiction's
    issuer id and licence keys with their validity (nbf/exp); valid 24 hours."""
    return Response(
        service.trust_list_token(session),
        media_type=JWT,
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/trust-list/root")
def trust_root(session: SessionDep) -> dict[str, object]:
    """The federation root public keys (a JWKS) that sign the trust list — to pin."""
    return {"keys": service.root_keys(session)}


@router.get("/status-lists", response_model=list[StatusListRef])
def status_lists(session: SessionDep) -> object:
    """Every status list this node publishes, then those of other nodes' jurisdictions
    it received (under their original URIs; served below as received), so that one
    `tongban trust sync` against any node of a federation gets them all."""
    imported = session.scalars(
        select(StatusListToken)
        .where(StatusListToken.own.is_(False), StatusListToken.token.is_not(None))
        .order_by(StatusListToken.jurisdiction_code, StatusListToken.list_no)
    )
    return [
        {"jurisdiction": r.jurisdiction_code, "list": r.list_no, "uri": r.uri}
        for r in [*status.list_refs(session), *imported]
    ]


@router.get(
    "/status-lists/{jurisdiction_code}/{list_no}",
    response_class=Response,
    responses={200: {"content": {STATUSLIST_JWT: {}}}},
)
def status_list(jurisdiction_code: str, list_no: NonNegInt32, session: SessionDep) -> Response:
    """A Token Status List (`statuslist+jwt`, 2 bits per licence, ZLIB-compressed): one
    of this node's, or one received from the node that publishes it, as received."""
    if not jurisdiction_code.isdigit():
        raise NotFound("状态列表不存在", type="unknown-status-list")
    row = session.get(StatusListToken, (jurisdiction_code, list_no))
    if row is not None and not row.own and row.token:
        token = row.token
    else:
        token = service.status_list_token(session, jurisdiction_code, list_no)
    return Response(
        token,
        media_type=STATUSLIST_JWT,
        headers={"Cache-Control": f"public, max-age={status.STATUS_LIST_TTL}"},
    )


@router.post("/my/licences/short-links", response_model=shortlinks.ShortLinkPublic, status_code=201)
def create_short_link(
    body: shortlinks.ShortLinkCreate, request: Request, actor: CurrentUser, session: SessionDep
) -> shortlinks.ShortLinkPublic:
    """A short link `/v/<token>` to a presentation, for a small QR code (30 minutes;
    at most 30 per holder and hour)."""
    link = shortlinks.create(session, actor, body.presentation)
    return shortlinks.ShortLinkPublic(
        token=link.token,
        url=f"{str(request.base_url).rstrip('/')}/v/{link.token}",
        expires_at=link.expires_at,
    )
