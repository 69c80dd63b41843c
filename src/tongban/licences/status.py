"""Licence status: suspension, reinstatement and revocation (officer actions with a reason,
recorded as events), the status lists this node publishes, and the StatusSource this node
verifies with."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.db import utcnow
from tongban.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tongban.identity.models import Account
from tongban.kernel.node import settings_of
from tongban.keys import service as keys
from tongban.licences import domain, issuing
from tongban.licences.domain import LicenceAction, LicenceStatus
from tongban.licences.jws import parse_compact
from tongban.licences.models import Licence, StatusListToken
from tongban.licences.rejection import LicenceRejected, RejectReason
from tongban.licences.statuslist import (
    INVALID,
    SUSPENDED,
    StatusList,
    sign_status_list,
    verify_status_list,
)

#: Seconds a published status list is valid; rebuilt after half of it, or at once when a
#: status in it changes.
STATUS_LIST_LIFETIME = 24 * 3600
#: Seconds a verifier may cache a list before fetching it again (`ttl`).
STATUS_LIST_TTL = 300

_BITS = {LicenceStatus.REVOKED.value: INVALID, LicenceStatus.SUSPENDED.value: SUSPENDED}


def get_for_officer(session: Session, actor: Account, licence_id: uuid.UUID) -> Licence:
    """A licence an officer may manage (issuing authority type, same jurisdiction); any
    other licence is 'not found'."""
    authority = issuing.officer_authority(session, actor)
    lic = session.get(Licence, licence_id)
    if lic is None:
        raise NotFound("证照不存在或无权查看", type="unknown-licence")
    ltype = issuing.get_type(lic.type_code)
    if not issuing.may_manage(authority, ltype, lic.jurisdiction_code):
        raise NotFound("证照不存在或无权查看", type="unknown-licence")
    return lic


def change_status(
    session: Session,
    actor: Account,
    licence_id: uuid.UUID,
    action: LicenceAction | str,
    reason: str,
) -> Licence:
    """Suspend, reinstate or revoke a licence: an officer of the issuing authority type in
    its jurisdiction, with a reason; recorded as an event; the status list is rebuilt on
    its next fetch. Revoked is final."""
    try:
        act = LicenceAction(action)
    except ValueError:
        raise ValidationFailed(
            "未知的证照操作", errors=[{"field": "action", "message": "不是允许的取值"}]
        ) from None
    if act in (LicenceAction.ISSUE, LicenceAction.BIND):
        raise ValidationFailed(
            "未知的证照操作", errors=[{"field": "action", "message": "签发请使用签发功能"}]
        )
    lic = get_for_officer(session, actor, licence_id)
    if not reason.strip():
        raise ValidationFailed(
            f"{domain.ACTION_LABELS[act]}证照须说明理由",
            errors=[{"field": "reason", "message": "请填写理由"}],
        )
    try:
        target = domain.next_status(lic.status, act)
    except domain.IllegalStatusChange as e:
        raise Conflict(str(e), type="illegal-status-change") from e
    before = LicenceStatus(lic.status)
    lic.status = target.value
    issuing._event(session, lic, act, before, target, actor, reason.strip())
    mark_changed(session, lic)
    return lic


def mark_changed(session: Session, lic: Licence) -> None:
    """A status in the licence's list changed: drop the built token (and, in a
    federation, publish the list to the other nodes when the transaction commits)."""
    from tongban.licences import federation

    row = session.get(StatusListToken, (lic.jurisdiction_code, lic.status_list))
    if row is not None:
        row.token = None
        row.built_at = None
        row.expires_at = None
    session.flush()
    federation.list_changed(session, lic.jurisdiction_code, lic.status_list)


def build_list(session: Session, jurisdiction_code: str, list_no: int) -> StatusList:
    """The status list of (jurisdiction, list) from the licences' statuses."""
    lst = StatusList(domain.STATUS_BITS, domain.STATUS_LIST_SIZE)
    rows = session.execute(
        select(Licence.status_index, Licence.status).where(
            Licence.jurisdiction_code == jurisdiction_code,
            Licence.status_list == list_no,
            Licence.status != LicenceStatus.VALID.value,
        )
    )
    for idx, status in rows:
        lst.set(idx, _BITS.get(status, INVALID))
    return lst


def status_list_token(session: Session, jurisdiction_code: str, list_no: int) -> str:
    """The `statuslist+jwt` of one of this node's lists, signed by the jurisdiction's
    current licence key; cached, rebuilt when a status changed or after half its life."""
    row = session.get(StatusListToken, (jurisdiction_code, list_no))
    if row is None or not row.own:
        raise NotFound("状态列表不存在", type="unknown-status-list")
    now = utcnow()
    if (
        row.token is not None
        and row.expires_at is not None
        and row.expires_at - now > timedelta(seconds=STATUS_LIST_LIFETIME // 2)
    ):
        return row.token
    lst = build_list(session, jurisdiction_code, list_no)
    key, _ = keys.signing_key(session, "licence", jurisdiction_code)
    iat = int(now.timestamp())
    row.token = sign_status_list(
        lst.encode(),
        lst.bits,
        row.uri,
        key,
        iat=iat,
        exp=iat + STATUS_LIST_LIFETIME,
        ttl=STATUS_LIST_TTL,
        iss=domain.issuer_id(settings_of(session).public_url, jurisdiction_code),
    )
    row.built_at = now
    row.expires_at = now + timedelta(seconds=STATUS_LIST_LIFETIME)
    session.flush()
    return row.token


def list_refs(session: Session) -> list[StatusListToken]:
    """Every status list this node publishes (for `tongban trust sync`)."""
    return list(
        session.scalars(
            select(StatusListToken)
            .where(StatusListToken.own.is_(True))
            .order_by(StatusListToken.jurisdiction_code, StatusListToken.list_no)
        )
    )


def import_list(
    session: Session, jurisdiction_code: str, list_no: int, uri: str, token: str
) -> StatusListToken:
    """Store a status list fetched from the node that publishes it (a jurisdiction this
    node does not issue for), after verifying it against the trust list; NodeStatuses
    answers from it until the next fetch. LicenceRejected when it does not verify or is
    not signed by that jurisdiction's issuer; a list older (`iat`) than the one stored
    is ignored (the stored row is returned unchanged)."""
    from tongban.licences.trust import local_trust

    trust = local_trust(session)

    def key_for(header: dict[str, object]) -> object:
        iss, kid, iat = header.get("iss"), header.get("kid"), header.get("iat")
        if not isinstance(iss, str) or not isinstance(kid, str) or not isinstance(iat, int):
            return None
        return trust.key_for(iss, kid, iat)

    checked = verify_status_list(token, key_for, now=int(time.time()), uri=uri)  # type: ignore[arg-type]
    issuer = trust.issuer(checked.iss) if checked.iss else None
    if issuer is None or issuer.jurisdiction != jurisdiction_code:
        raise LicenceRejected(
            RejectReason.BAD_SIGNATURE,
            f"status list of {jurisdiction_code} not signed by its issuer",
        )
    row = session.get(StatusListToken, (jurisdiction_code, list_no))
    if row is not None and row.own:
        raise Conflict("本节点签发的状态列表不能被导入覆盖", type="own-status-list")
    same_uri = session.scalar(select(StatusListToken).where(StatusListToken.uri == uri))
    if same_uri is not None and same_uri is not row:
        raise Conflict("状态列表地址已被另一列表使用", type="status-list-uri-taken")
    if row is not None and row.token and row.uri == uri:
        stored_iat = parse_compact(row.token).payload.get("iat")
        if isinstance(stored_iat, int) and stored_iat > checked.iat:
            return row  # an older list never replaces a newer one
    if row is None:
        row = StatusListToken(jurisdiction_code=jurisdiction_code, list_no=list_no, own=False)
        session.add(row)
    row.uri, row.token = uri, token
    row.built_at = utcnow()
    row.expires_at = datetime.fromtimestamp(checked.exp, UTC) if checked.exp is not None else None
    session.flush()
    return row


class NodeStatuses:
    """The StatusSource of this node: its own lists read straight from the licences (always
    current), other nodes' lists from the fetched tokens it stored (verified against the
    trust list)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._decoded: dict[str, StatusList] = {}

    def status_of(self, uri: str, idx: int) -> int:
        row = self.session.scalar(select(StatusListToken).where(StatusListToken.uri == uri))
        if row is None:
            raise LicenceRejected(RejectReason.STATUS_UNAVAILABLE, f"no status list {uri}")
        if row.own:
            # Checked before the query: an index beyond 64 bits cannot even be bound.
            if not 0 <= idx < domain.STATUS_LIST_SIZE:
                raise LicenceRejected(RejectReason.STATUS_UNAVAILABLE, "index outside the list")
            status = self.session.scalar(
                select(Licence.status).where(
                    Licence.jurisdiction_code == row.jurisdiction_code,
                    Licence.status_list == row.list_no,
                    Licence.status_index == idx,
                )
            )
            return _BITS.get(status or LicenceStatus.VALID.value, 0)
        lst = self._decoded.get(uri)
        if lst is None:
            lst = self._fetched(row)
            self._decoded[uri] = lst
        try:
            return lst.get(idx)
        except IndexError as exc:
            raise LicenceRejected(RejectReason.STATUS_UNAVAILABLE, str(exc)) from exc

    def _fetched(self, row: StatusListToken) -> StatusList:
        from tongban.licences.trust import local_trust

        if not row.token:
            raise LicenceRejected(RejectReason.STATUS_UNAVAILABLE, f"{row.uri} not fetched")
        trust = local_trust(self.session)

        def key_for(header: dict[str, object]) -> object:
            iss, kid, iat = header.get("iss"), header.get("kid"), header.get("iat")
            if not isinstance(iss, str) or not isinstance(kid, str) or not isinstance(iat, int):
                return None
            return trust.key_for(iss, kid, iat)

        token = verify_status_list(row.token, key_for, now=int(time.time()), uri=row.uri)  # type: ignore[arg-type]
        return token.status_list


def officer_may_act(session: Session, actor: Account, lic: Licence) -> bool:
    """Whether the page should offer status actions to `actor` on `lic`."""
    try:
        get_for_officer(session, actor, lic.id)
    except (NotFound, PermissionDenied):
        return False
    return True
