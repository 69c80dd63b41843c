"""The venue staff's scan: a code read by the camera of a staff member's phone or typed
in, verified by this node as the venue's gate. Never commits.

Who scans: an account of the venue staff role (identity Role.VENUE) granted a venue
(models.VenueStaff) by the node's administrator; anyone else is refused (403), and a
member of staff scans only for the venues they were granted.

Where the code is verified: on this node, the node of the venue's jurisdiction, with
the same offline verifier a gate device runs (verifier.Verifier) fed from what the node
holds itself — the federation trust list it verifies licences with, its own
jurisdictions' revocation lists (fresh at every scan) and those received from the other
nodes. Not in the page: a browser would need the SM2/SM3 suite, the trust list and
every revocation list in JavaScript, and its verdicts would be the page's word, not the
node's. A venue without a network uses a gate device (`tongban gate serve`) instead.

Replays: a code admitted at any venue of the same operator (by this page or by the
operator's gate devices, whose uploads land in the same table) is refused; the gates
learn the page's admissions at their next sync (usage.seen_by_operator). Every scan is
a use, kept and forwarded to the card's node like a gate's upload."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.card import codec, revocations
from tongban.card.benefits import BadRules, Venue, rules_at, venue, venues
from tongban.card.models import CardUse, ReceivedRevocations, VenueStaff
from tongban.card.trust import issuer_keys
from tongban.card.usage import UseIn, keep_use
from tongban.card.verifier import Policy, Verdict, Verifier, index_keys
from tongban.errors import NotFound, PermissionDenied, ValidationFailed
from tongban.exchange import service as exchange
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.licences import service as licences
from tongban.regions.models import City

#: Longest text a scan may carry (a code's QR text is about 305 characters).
MAX_SCANNED = 2000


# --- who scans -----------------------------------------------------------------------------


def venues_of(session: Session, account: Account) -> list[Venue]:
    """The venues `account` scans for (none unless it is venue staff)."""
    if account.role != Role.VENUE.value:
        return []
    known = venues()
    codes = session.scalars(
        select(VenueStaff.venue_code)
        .where(VenueStaff.account_id == account.id)
        .order_by(VenueStaff.venue_code)
    )
    return [known[c] for c in codes if c in known]


def require_staff(session: Session, account: Account, venue_code: str | None = None) -> Venue:
    """The venue `account` scans for (`venue_code`, or its only/first one); 403 when it
    is not venue staff of it."""
    mine = venues_of(session, account)
    if not mine:
        raise PermissionDenied("仅场馆工作人员可以扫码核验", type="not-venue-staff")
    if venue_code is None:
        return mine[0]
    for v in mine:
        if v.code == venue_code:
            return v
    raise PermissionDenied(f"您不是场所 {venue_code} 的工作人员", type="not-venue-staff")


def grant(session: Session, by: Account | None, account: Account, venue_code: str) -> VenueStaff:
    """Let a venue staff account scan for `venue_code` (the administrator's act; None:
    the demo loader). Idempotent."""
    if by is not None and by.role != Role.ADMIN.value:
        raise PermissionDenied("只有平台管理员可以指定场馆工作人员")
    if account.role != Role.VENUE.value:
        raise ValidationFailed(
            "只能为场馆工作人员账号指定场所",
            errors=[{"field": "username", "message": "该账号不是场馆工作人员"}],
        )
    try:
        place = venue(venue_code)
    except BadRules:
        raise ValidationFailed(
            f"未知场所 {venue_code}", errors=[{"field": "venue_code", "message": "未知场所"}]
        ) from None
    city = session.get(City, place.city)
    if city is None or not exchange.serves_here(session, city.jurisdiction_code):
        raise ValidationFailed(
            f"场所 {place.name} 不在本节点服务的辖区",
            errors=[{"field": "venue_code", "message": "不在本节点"}],
        )
    row = session.get(VenueStaff, (account.id, venue_code))
    if row is None:
        row = VenueStaff(
            account_id=account.id, venue_code=venue_code, granted_by=by.id if by else None
        )
        session.add(row)
        session.flush()
    return row


def load_demo_staff(session: Session) -> int:
    """Grant each demo venue's staff account its venue (idempotent); how many granted."""
    from tongban.card.demo_data import staff_username

    made = 0
    for v in venues().values():
        account = session.scalar(select(Account).where(Account.username == staff_username(v.code)))
        if account is None or session.get(VenueStaff, (account.id, v.code)) is not None:
            continue
        city = session.get(City, v.city)
        if city is None or not exchange.serves_here(session, city.jurisdiction_code):
            continue
        grant(session, None, account, v.code)
        made += 1
    return made


# --- the node as the venue's gate ---------------------------------------------------------------


class OperatorReplay:
    """The replay store of a scan: a code is a replay when any venue of the same operator
    admitted it already (card_use rows: this page's scans and the gates' uploads)."""

    def __init__(self, session: Session, operator_venues: list[str]) -> None:
        self.session = session
        self.venues = operator_venues

    def seen(self, ref: bytes, time: int) -> bool:
        return (
            self.session.scalar(
                select(CardUse.id)
                .where(
                    CardUse.card_ref == ref.hex(),
                    CardUse.code_time == time,
                    CardUse.admitted.is_(True),
                    CardUse.venue_code.in_(self.venues),
                )
                .limit(1)
            )
            is not None
        )

    def remember(self, ref: bytes, time: int, now: int) -> None:
        """Nothing to do: the use stored with the verdict is the memory."""


def node_verifier(session: Session, place: Venue, now: int) -> Verifier:
    """A verifier for `place` from what this node holds: the trust list's keys, the
    revocation lists of its own jurisdictions (as of now) and those received from the
    other nodes (as signed: an old one makes their cards' codes stale)."""
    keys = index_keys(issuer_keys(licences.local_trust(session)))
    at = datetime.fromtimestamp(now, UTC)
    revoked: dict[str, frozenset[bytes]] = {}
    signed: dict[str, int] = {}
    for served in revocations.served(session):
        code = served.jurisdiction
        if served.own:
            revoked[code] = frozenset(revocations.revoked_refs(session, code, at))
            signed[code] = now
            continue
        row = session.get(ReceivedRevocations, code)
        if row is None:
            continue
        try:
            lst = codec.decode_revocations(bytes(row.data))
        except codec.Malformed:
            continue  # verified when received: cannot happen; treated as no list (stale)
        revoked[code], signed[code] = frozenset(lst.refs), lst.iat
    operator = [v.code for v in venues().values() if v.operator == place.operator]
    return Verifier(
        keys,
        revoked,
        synced_at=now,
        policy=Policy(),
        replay=OperatorReplay(session, operator),
        rules=rules_at(place.code),
        lists_iat=signed,
    )


@dataclass(frozen=True)
class Scanned:
    venue: Venue
    verdict: Verdict
    use: CardUse
    elapsed_ms: float


def scan_gate_id(account: Account) -> str:
    """The gate id a staff member's scans are recorded under."""
    return f"scan-{account.id.hex[:16]}"


def scan(
    session: Session,
    staff: Account,
    venue_code: str | None,
    scanned: str,
    *,
    now: int | None = None,
) -> Scanned:
    """Verify a scanned or typed code for a venue of `staff`, keep the use (forwarded to
    the card's node when that is another), and return the verdict."""
    place = require_staff(session, staff, venue_code)
    text = scanned.strip()
    if not text:
        raise ValidationFailed(
            "请扫描或输入电子社保卡码", errors=[{"field": "code", "message": "必填"}]
        )
    if len(text) > MAX_SCANNED:
        raise ValidationFailed("码过长", errors=[{"field": "code", "message": "过长"}])
    started = time.perf_counter()
    now = int(time.time()) if now is None else now
    verdict = node_verifier(session, place, now).check(text, now)
    holder, decision = verdict.holder, verdict.decision
    use = UseIn(
        id=uuid.uuid4(),
        venue_code=place.code,
        used_at=datetime.fromtimestamp(now, UTC),
        code_time=verdict.code_time,
        admitted=verdict.admitted,
        reason=verdict.reason.value if verdict.reason else None,
        card_jurisdiction=holder.jurisdiction if holder else None,
        card_city=holder.city if holder else None,
        card_ref=holder.ref if holder else None,
        rule=decision.rule if decision else None,
        benefit=decision.benefit if decision and verdict.admitted else None,
        why=decision.why if decision else None,
        flagged=verdict.flagged,
    )
    row = keep_use(session, use, scan_gate_id(staff), place)
    return Scanned(place, verdict, row, (time.perf_counter() - started) * 1000)


def venue_or_404(code: str) -> Venue:
    try:
        return venue(code)
    except BadRules:
        raise NotFound("场所不存在", type="unknown-venue") from None
