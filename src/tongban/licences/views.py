"""Pages of e-licences: the holder's wallet (我的证照) with presentation as QR code and
text, the officer's licence desk (issue, suspend / reinstate / revoke, history), and a
verification page for anyone."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from tongban.config import Settings
from tongban.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from tongban.identity.models import Account
from tongban.kernel.node import settings_of
from tongban.licences import domain, issuing, service, shortlinks, status
from tongban.licences.domain import ACTION_LABELS, STATUS_LABELS
from tongban.licences.keybinding import new_nonce, normalise_nonce
from tongban.licences.models import Licence
from tongban.licences.schemas import MAX_PRESENTATION
from tongban.web.deps import (
    CsrfChecked,
    CurrentUser,
    FormDep,
    OptionalUser,
    SessionDep,
    SettingsDep,
)
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)

LABELS = {
    "status": {s.value: label for s, label in STATUS_LABELS.items()},
    "actions": {a.value: label for a, label in ACTION_LABELS.items()},
    "reasons_ok": "验证通过",
}


def _id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("证照不存在或无权查看", type="unknown-licence") from None


def _rows(lic: Licence) -> list[tuple[str, Any, bool]]:
    """(label, value, personal) of each claim, in the type's order."""
    ltype = issuing.get_type(lic.type_code)
    return [(f.label, lic.claims[f.name], f.personal) for f in ltype.fields if f.name in lic.claims]


def _common(lic: Licence) -> dict[str, Any]:
    return {
        "lic": lic,
        "ltype": issuing.get_type(lic.type_code),
        "rows": _rows(lic),
        "labels": LABELS,
    }


# --- the holder's wallet -------------------------------------------------------------------


@router.get("/my/licences")
def my_licences(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    items = [(lic, issuing.get_type(lic.type_code)) for lic in service.list_mine(session, user)]
    return render(request, "licences/my_list.html", user, items=items, labels=LABELS)


# --- the holder's device key (holder binding) -----------------------------------------------


_DONE = {
    "registered": "本设备密钥已登记，证照已重新签发并绑定到本设备。",
    "withdrawn": "设备密钥已停用。",
}


def _device_page(
    request: Request,
    session: Session,
    user: Account,
    *,
    message: str | None = None,
    errors: dict[str, str] | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "licences/device.html",
        user,
        status_code=status_code,
        errors=errors or {},
        keys=service.list_keys(session, user),
        bound=[
            (lic, issuing.get_type(lic.type_code))
            for lic in service.list_mine(session, user)
            if lic.status != "revoked"
        ],
        message=message,
        done=done,
    )


@router.get("/my/licences/device")
def device_page(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    done = request.query_params.get("done")
    return _device_page(request, session, user, done=_DONE.get(done or ""))


@router.post("/my/licences/device", dependencies=[CsrfChecked])
def register_device(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    jwk: Annotated[str, Form(max_length=2000)] = "",
    label: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        parsed = json.loads(jwk) if jwk else None
        service.register_key(session, user, parsed, label)
    except (ValueError, RecursionError):  # not JSON, or nested absurdly deep
        refused = form_failure(session, ValidationFailed("设备公钥格式错误，请重试"))
        return _device_page(request, session, user, **refused.context)
    except PermissionDenied:
        raise
    except DomainError as e:
        return _device_page(request, session, user, **form_failure(session, e).context)
    return RedirectResponse("/my/licences/device?done=registered", status_code=303)


@router.post("/my/licences/device/{key_id}/withdraw", dependencies=[CsrfChecked])
def withdraw_device(
    key_id: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    service.withdraw_key(session, user, _id(key_id))
    return RedirectResponse("/my/licences/device?done=withdrawn", status_code=303)


@router.get("/my/licences/{licence_id}")
def my_licence(
    licence_id: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    lic = service.get_mine(session, user, _id(licence_id))
    return render(request, "licences/my_detail.html", user, **_common(lic))


@router.get("/my/licences/{licence_id}/present")
def present_page(
    licence_id: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    lic = service.get_mine(session, user, _id(licence_id))
    ctx = _common(lic)
    return render(request, "licences/present.html", user, chosen=None, presentation=None, **ctx)


@router.post("/my/licences/{licence_id}/present", dependencies=[CsrfChecked])
def present(
    licence_id: str, request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    lid = _id(licence_id)
    chosen = [v for v in form.getlist("disclose") if isinstance(v, str)]
    try:
        p = service.present(session, user, lid, chosen)
    except PermissionDenied:
        raise
    except DomainError as e:
        refused = form_failure(session, e)
        lic = service.get_mine(session, user, lid)
        return render(
            request,
            "licences/present.html",
            user,
            chosen=chosen,
            presentation=None,
            **refused.context,
            **_common(lic),
        )
    return render(
        request,
        "licences/present.html",
        user,
        chosen=p.disclosed,
        presentation=p,
        **_common(p.licence),
    )


@router.post("/my/licences/{licence_id}/present/bound", dependencies=[CsrfChecked])
def present_bound(
    licence_id: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    presentation: Annotated[str, Form(max_length=MAX_PRESENTATION)] = "",
    nonce: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """The presentation the holder's device has just bound (a KB-JWT appended in the
    browser), shown as QR code and text like any other."""
    lid = _id(licence_id)
    try:
        p = service.bound_presentation(session, user, lid, "".join(presentation.split()))
    except PermissionDenied:
        raise
    except DomainError as e:
        refused = form_failure(session, e)
        lic = service.get_mine(session, user, lid)
        return render(
            request,
            "licences/present.html",
            user,
            chosen=None,
            presentation=None,
            **refused.context,
            **_common(lic),
        )
    return render(
        request,
        "licences/present.html",
        user,
        chosen=p.disclosed,
        presentation=p,
        nonce=normalise_nonce(nonce),
        kb_window_minutes=max(1, settings_of(session).licence_kb_window // 60),
        **_common(p.licence),
    )


# --- verification, for anyone ---------------------------------------------------------------


def _verify_context(settings: Settings, require: bool | None = None) -> dict[str, Any]:
    """A fresh challenge (核验码) for the next presentation, and the binding choice."""
    return {
        "nonce": new_nonce(),
        "require_binding": settings.licence_require_binding if require is None else require,
        "unbound_allowed": settings.licence_allow_unbound,
        "kb_window_minutes": max(1, settings.licence_kb_window // 60),
    }


def _issuer_name(session: Session, result: Any) -> str | None:
    """Who issued the licence, in words a verifier reads: the issuing authority when the
    holder disclosed it, else the trusted jurisdiction's name; None for an issuer that
    is not on the trust list (its address is never shown as a name)."""
    if result is None:
        return None
    authority = result.claims.get("issuing_authority") if result.claims else None
    if isinstance(authority, str) and authority:
        return authority
    if not result.jurisdiction:
        return None
    from tongban.regions import service as regions

    try:
        return (
            f"{regions.get_jurisdiction(session, result.jurisdiction).name}（信任清单内的签发辖区）"
        )
    except NotFound:
        return None


@router.get("/licences/verify")
def verify_page(request: Request, user: OptionalUser, settings: SettingsDep) -> Response:
    return render(
        request,
        "licences/verify.html",
        user,
        result=None,
        issuer_name=None,
        text="",
        **_verify_context(settings),
    )


@router.post("/licences/verify", dependencies=[CsrfChecked])
def verify(
    request: Request,
    session: SessionDep,
    user: OptionalUser,
    presentation: Annotated[str, Form(max_length=MAX_PRESENTATION)] = "",
    nonce: Annotated[str, Form(max_length=200)] = "",
    require_binding: Annotated[str, Form(max_length=10)] = "",
    binding_choice: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    text = "".join(presentation.split())  # copied text may carry line breaks
    # the page's form always sends `binding_choice` (an unticked box sends nothing);
    # a post without it gets the deployment's default
    require = bool(require_binding) if binding_choice else None
    policy = service.binding_policy(
        require=require, nonce=normalise_nonce(nonce), settings=settings_of(session)
    )
    return _verified(request, session, user, text, policy)


def _verified(
    request: Request, session: Session, user: Account | None, text: str, policy: Any
) -> Response:
    """The verify page with `text` verified under `policy` (nothing to verify: a hint)."""
    result = service.verify_presentation(session, text, binding=policy) if text else None
    return render(
        request,
        "licences/verify.html",
        user,
        result=result,
        issuer_name=_issuer_name(session, result),
        text=text,
        message=None if text else "请粘贴要核验的电子证照文本",
        checked_nonce=policy.nonce,
        **_verify_context(settings_of(session), policy.required),
    )


# --- short links: a small QR for the verify page ------------------------------------------------


@router.post("/my/licences/short-links", dependencies=[CsrfChecked])
def create_short_link(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    presentation: Annotated[str, Form(max_length=MAX_PRESENTATION)] = "",
) -> Response:
    link = shortlinks.create(session, user, presentation)
    url = f"{str(request.base_url).rstrip('/')}/v/{link.token}"
    return render(
        request,
        "licences/short_link.html",
        user,
        url=url,
        svg=shortlinks.qr_svg(url),
        expires_at=link.expires_at,
    )


@router.get("/v/{token}")
def open_short_link(
    token: str, request: Request, session: SessionDep, user: OptionalUser
) -> Response:
    try:
        text = shortlinks.resolve(session, token)
    except NotFound as e:
        return render(
            request,
            "licences/short_link_gone.html",
            user,
            status_code=e.status,
            expired=isinstance(e, shortlinks.Expired),
            message=e.detail,
        )
    policy = service.binding_policy(require=None, nonce=None, settings=settings_of(session))
    return _verified(request, session, user, text, policy)


# --- the officer's desk -----------------------------------------------------------------------


def _officer_types(session: Session, user: Account) -> list[domain.LicenceType]:
    authority = issuing.officer_authority(session, user)
    return [t for t in service.list_types() if t.authority_type == authority.type]


def _officer_list_page(
    request: Request, session: Session, user: Account, q: str | None, state: str | None
) -> Response:
    state = state if state in LABELS["status"] else None
    q = (q or "").strip()[:60] or None
    items = [
        (lic, issuing.get_type(lic.type_code))
        for lic in service.list_for_officer(session, user, q=q, status=state)
    ]
    return render(
        request,
        "licences/officer_list.html",
        user,
        items=items,
        types=_officer_types(session, user),
        authority=issuing.officer_authority(session, user),
        filters={"q": q or "", "state": state or ""},
        labels=LABELS,
    )


@router.get("/officer/licences")
def officer_list(
    request: Request, session: SessionDep, user: CurrentUser, state: str | None = None
) -> Response:
    """The authority's licences; a search by holder (an ID number) is POSTed, never put
    in the URL where access logs keep it."""
    return _officer_list_page(request, session, user, None, state)


@router.post("/officer/licences", dependencies=[CsrfChecked])
def officer_search(
    request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    q, state = form.get("q"), form.get("state")
    return _officer_list_page(
        request,
        session,
        user,
        q if isinstance(q, str) else None,
        state if isinstance(state, str) else None,
    )


def _issue_page(
    request: Request,
    session: Session,
    user: Account,
    ltype: domain.LicenceType,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "licences/officer_issue.html",
        user,
        status_code=status_code,
        ltype=ltype,
        types=_officer_types(session, user),
        values=values,
        errors=errors,
        message=message,
    )


@router.get("/officer/licences/new")
def issue_page(
    request: Request, session: SessionDep, user: CurrentUser, type: str | None = None
) -> Response:
    types = _officer_types(session, user)
    if not types:
        raise PermissionDenied("本部门不签发电子证照")
    ltype = next((t for t in types if t.code == type), types[0])
    return _issue_page(request, session, user, ltype, values={}, errors={})


@router.post("/officer/licences/new", dependencies=[CsrfChecked])
def issue(request: Request, session: SessionDep, user: CurrentUser, form: FormDep) -> Response:
    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    ltype = service.get_type(text("type_code"))
    claims = {f.name: text(f"claim_{f.name}") for f in ltype.fields}
    req = service.IssueRequest(
        type_code=ltype.code,
        holder_identifier=text("holder_identifier").upper(),
        holder_name=text("holder_name"),
        holder_type=text("holder_type") or None,
        claims={k: v for k, v in claims.items() if v},
    )
    try:
        lic = service.issue(session, user, req)
    except PermissionDenied:
        raise
    except DomainError as e:
        refused = form_failure(session, e, inputs={"claims.": "claim_"})
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        return _issue_page(request, session, user, ltype, values=values, **refused.context)
    return RedirectResponse(f"/officer/licences/{lic.id}?done=issue", status_code=303)


def _officer_detail(
    request: Request,
    session: Session,
    user: Account,
    lic: Licence,
    *,
    message: str | None = None,
    errors: dict[str, str] | None = None,
    failed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "licences/officer_detail.html",
        user,
        status_code=status_code,
        errors=errors or {},
        actions=[a.value for a in domain.allowed_actions(lic.status)],
        message=message,
        failed=failed or {},
        done=request.query_params.get("done"),
        **_common(lic),
    )


@router.get("/officer/licences/{licence_id}")
def officer_detail(
    licence_id: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    lic = status.get_for_officer(session, user, _id(licence_id))
    return _officer_detail(request, session, user, lic)


@router.post("/officer/licences/{licence_id}/status", dependencies=[CsrfChecked])
def officer_status(
    licence_id: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    action: Annotated[str, Form()] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    lid = _id(licence_id)
    try:
        service.change_status(session, user, lid, action, reason)
    except (PermissionDenied, NotFound):
        raise
    except DomainError as e:
        refused = form_failure(session, e)
        lic = status.get_for_officer(session, user, lid)
        failed = {"action": action, "reason": reason}
        return _officer_detail(request, session, user, lic, **refused.context, failed=failed)
    return RedirectResponse(f"/officer/licences/{lid}?done={action}", status_code=303)
