"""JSON API of the card context: the holder's cards and their actions, a window clerk's
search and actions for a walk-in, a device's credential for the dynamic code, and what
gates sync (the revocation lists; the trust list is e-licences' /api/v1/trust-list)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError
from sqlalchemy.orm import Session

from tongban.card import benefits, domain, figures, gateauth, scanning, service, usage
from tongban.card.codec import QR_PREFIX
from tongban.card.domain import CardStatus
from tongban.card.models import Card
from tongban.card.schemas import (
    CardActionIn,
    CardActionOut,
    CardPublic,
    CardSearch,
    CredentialIn,
    CredentialOut,
    FigureRowOut,
    FiguresOut,
    GatePublic,
    GateRegister,
    RevocationsRef,
    ScanHolder,
    ScanIn,
    ScanOut,
    SeenCode,
    UploadOut,
    UsePublic,
    VenuePublic,
)
from tongban.card.verifier import REFUSAL_LABELS
from tongban.crypto.signing import b64u
from tongban.errors import FieldError, NotFound, ValidationFailed
from tongban.identity.domain import mask_id_number
from tongban.identity.models import Account
from tongban.kernel.history import EventPublic
from tongban.regions import service as regions
from tongban.regions.models import City
from tongban.web.deps import CurrentUser, SessionDep
from tongban.web.problems import responses

router = APIRouter(prefix="/api/v1", tags=["card"])


def card_public(session: Session, user: Account, card: Card) -> CardPublic:
    replaced = session.get(Card, card.replaces_id) if card.replaces_id else None
    return CardPublic(
        id=card.id,
        number=card.number,
        jurisdiction_code=card.jurisdiction_code,
        city_code=card.city_code,
        holder_name=card.holder_name,
        holder_id_number=mask_id_number(card.holder_id_number),
        generation=card.generation,
        transport=card.transport,
        state=CardStatus(card.state).value,
        state_label=domain.STATUS_LABELS[CardStatus(card.state)],
        concessions=domain.concession_labels(card.concessions),
        issued_at=card.issued_at,
        replaces=replaced.number if replaced is not None else None,
        version=card.version,
        allowed_actions=[a.value for a in service.allowed_actions(user, card)],
        events=[EventPublic.model_validate(e) for e in card.events],
    )


def _outcome(session: Session, user: Account, outcome: service.Outcome) -> CardActionOut:
    return CardActionOut(
        card=card_public(session, user, outcome.card),
        replacement=(
            card_public(session, user, outcome.replacement)
            if outcome.replacement is not None
            else None
        ),
    )


# --- the holder --------------------------------------------------------------------------


@router.get("/me/cards", response_model=list[CardPublic])
def my_cards(session: SessionDep, user: CurrentUser) -> list[CardPublic]:
    """The caller's social-security cards, newest first (a proven resident's only)."""
    return [card_public(session, user, c) for c in service.list_mine(session, user)]


@router.get("/me/cards/{card_id}", response_model=CardPublic)
def my_card(card_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> CardPublic:
    return card_public(session, user, service.get_for(session, user, card_id))


@router.post("/me/cards/{card_id}/actions", response_model=CardActionOut)
def my_card_action(
    card_id: uuid.UUID, body: CardActionIn, session: SessionDep, user: CurrentUser
) -> CardActionOut:
    """挂失 (report_lost), 解除挂失 (found) or 补换 (replace) one's own card."""
    return _outcome(session, user, service.act(session, user, card_id, body.action, body.reason))


# --- a window clerk, for a walk-in ---------------------------------------------------------


@router.post("/cards/search", response_model=list[CardPublic])
def search_cards(body: CardSearch, session: SessionDep, user: CurrentUser) -> list[CardPublic]:
    """A clerk finds a walk-in's cards by ID number (in the clerk's jurisdiction)."""
    cards = service.find_for_clerk(session, user, body.id_number)
    return [card_public(session, user, c) for c in cards]


@router.get("/cards/{card_id}", response_model=CardPublic)
def get_card(card_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> CardPublic:
    return card_public(session, user, service.get_for(session, user, card_id))


@router.post("/cards/{card_id}/actions", response_model=CardActionOut)
def card_action(
    card_id: uuid.UUID, body: CardActionIn, session: SessionDep, user: CurrentUser
) -> CardActionOut:
    """A clerk (or the holder) acts on a card: 挂失, 解除挂失, 补换, 注销 (clerk, with a
    reason)."""
    return _outcome(session, user, service.act(session, user, card_id, body.action, body.reason))


# --- the dynamic code ------------------------------------------------------------------------

#: How often a device makes a new code (seconds).
REFRESH_SECONDS = 30


def credential_out(session: Session, issued: service.Issued) -> CredentialOut:
    card, cred = issued.card, issued.credential
    name = card.holder_name
    return CredentialOut(
        credential=b64u(issued.data),
        issued_at=issued.row.issued_at,
        expires_at=issued.row.expires_at,
        device_kid=issued.row.device_kid,
        card_number=card.number,
        holder_name=name[0] + "*" * (len(name) - 1) if len(name) > 1 else name,
        city_code=card.city_code,
        city_name=regions.get_city(session, card.city_code).name,
        age_band=domain.AGE_BAND_LABELS[cred.age_band],
        concessions=domain.concession_labels(cred.concessions),
        transport=cred.transport,
        qr_prefix=QR_PREFIX,
        refresh_seconds=REFRESH_SECONDS,
    )


@router.post("/me/card/credential", response_model=CredentialOut)
def card_credential(body: CredentialIn, session: SessionDep, user: CurrentUser) -> CredentialOut:
    """A 24-hour credential binding the caller's device key (public JWK, P-256 or
    Ed25519) to their current card: the device signs each dynamic code with that key.
    A new device supersedes the others (their codes are refused once gates sync); 409
    `card-not-usable` when the card is lost, replaced or cancelled."""
    return credential_out(session, service.enrol(session, user, body.jwk))


# --- what gates sync -------------------------------------------------------------------------

OCTETS = "application/octet-stream"


@router.get("/card/revocations", response_model=list[RevocationsRef])
def revocation_lists(session: SessionDep) -> list[RevocationsRef]:
    """Every card revocation list a gate needs from this node: the jurisdictions it
    serves, and those it received from the other nodes (docs/card-format.md)."""
    return [RevocationsRef(**vars(s)) for s in service.served(session)]


@router.get(
    "/card/revocations/{jurisdiction}",
    response_class=Response,
    responses={200: {"content": {OCTETS: {}}}},
)
def revocation_list_bytes(
    jurisdiction: str,
    session: SessionDep,
    since_seq: Annotated[int | None, Query(ge=0, lt=2**32)] = None,
    since_iat: Annotated[int | None, Query(ge=0, lt=2**32)] = None,
    since_digest: Annotated[str | None, Query(pattern="^[0-9a-f]{16}$")] = None,
) -> Response:
    """One jurisdiction's signed revocation list (binary, docs/card-format.md). A gate
    that holds a list names it (`since_seq`, `since_iat`, `since_digest`, all three) and
    gets a delta onto it when this node can make one, else the full list."""
    if len(jurisdiction) != 6 or not jurisdiction.isdigit():
        raise NotFound("吊销名单不存在", type="unknown-revocation-list")
    given = (since_seq, since_iat, since_digest)
    if any(v is not None for v in given) and any(v is None for v in given):
        missing = [
            name
            for name, v in zip(("since_seq", "since_iat", "since_digest"), given, strict=True)
            if v is None
        ]
        raise ValidationFailed(
            "增量同步需同时给出 since_seq、since_iat 和 since_digest",
            errors=[FieldError(m, "缺少此参数") for m in missing],
        )
    since = (
        service.Since(since_seq, since_iat, bytes.fromhex(since_digest))
        if since_seq is not None and since_iat is not None and since_digest is not None
        else None
    )
    return Response(
        service.list_or_delta(session, jurisdiction, since),
        media_type=OCTETS,
        headers={"Cache-Control": "no-store"},
    )


# --- gates: registration, uploads, the codes their operator's other gates admitted -------------


async def raw_body(request: Request) -> bytes:
    """The request's body as sent (what the gate signed)."""
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


def _gate(request: Request, session: SessionDep, body: bytes) -> service.CardGate:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return gateauth.authenticate(
        session, request.headers.get(gateauth.HEADER), request.method, target, body
    )


class UploadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uses: list[usage.UseIn] = Field(max_length=usage.MAX_BATCH)


@router.post("/card/gates", response_model=GatePublic, status_code=201)
def register_gate(body: GateRegister, session: SessionDep, user: CurrentUser) -> GatePublic:
    """The node's administrator allows a gate of a venue to upload (its Ed25519 public key)."""
    gate = gateauth.register(session, body.gate_id, body.venue_code, body.public_jwk, user)
    return GatePublic.model_validate(gate)


@router.post("/card/uses", response_model=UploadOut, responses=responses(401, 413))
def upload_uses(request: Request, session: SessionDep, body: RawBody) -> UploadOut:
    """A gate's uses, signed by the gate (X-Gate-Signature); each is stored once, by its
    id, however many times it is uploaded, and forwarded once to the card's node. Body:
    `{"uses": [{"id", "venue_code", "used_at", "code_time", "admitted", "reason",
    "card_jurisdiction", "card_ref", "rule", "benefit", "why", "flagged"}]}`."""
    gate = _gate(request, session, body)
    try:
        parsed = UploadIn.model_validate_json(body)
    except PydanticError as e:
        raise ValidationFailed(
            "上传的记录格式错误",
            errors=[
                {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
                for err in e.errors()[:20]
            ],
        ) from None
    done = service.store_uploaded(session, gate, parsed.uses)
    return UploadOut(stored=done.stored, duplicates=done.duplicates)


@router.get("/card/gates/seen", response_model=list[SeenCode], responses=responses(401))
def seen_codes(
    request: Request,
    session: SessionDep,
    body: RawBody,
    since: Annotated[int, Query(ge=0, le=2**32)] = 0,
) -> list[SeenCode]:
    """The codes admitted at the other gates of the calling gate's operator since `since`
    (Unix seconds, at most ten minutes back): its replay store takes them."""
    gate = _gate(request, session, body)
    floor = datetime.now(UTC) - usage.SEEN_HORIZON
    start = max(floor, datetime.fromtimestamp(since, UTC))
    return [SeenCode(ref=r, time=t) for r, t in service.seen_by_operator(session, gate, start)]


@router.get("/card/venues", response_model=list[VenuePublic])
def list_venues() -> list[VenuePublic]:
    """The venues of the demo federation (a gate is configured with one of them)."""
    return [venue_public(v) for v in benefits.venues().values()]


@router.get("/me/card/uses", response_model=list[UsePublic])
def my_uses(session: SessionDep, user: CurrentUser) -> list[UsePublic]:
    """Where the caller's cards were shown, newest first (uploaded by gates later)."""
    return [UsePublic.model_validate(u) for u in service.history_of(session, user)]


# --- venue staff: the scan; operators: the figures ------------------------------------------------


def venue_public(v: benefits.Venue) -> VenuePublic:
    return VenuePublic(**vars(v), kind_label=benefits.KIND_LABELS[v.kind])


def scan_out(session: Session, done: scanning.Scanned) -> ScanOut:
    v = done.verdict
    h = v.holder
    holder = None
    if h is not None:
        city = session.get(City, h.city)
        holder = ScanHolder(
            jurisdiction=h.jurisdiction,
            city=h.city,
            city_name=city.name if city is not None else h.city,
            description=h.describe(),
        )
    return ScanOut(
        admitted=v.admitted,
        message=v.message,
        reason=v.reason.value if v.reason else None,
        reason_label=REFUSAL_LABELS[v.reason] if v.reason else None,
        benefit=v.decision.benefit if v.decision and v.admitted else None,
        why=v.decision.why if v.decision else None,
        rule=v.decision.rule if v.decision else None,
        flagged=v.flagged,
        holder=holder,
        venue=venue_public(done.venue),
        use_id=done.use.id,
        elapsed_ms=round(done.elapsed_ms, 2),
    )


@router.post("/card/scan", response_model=ScanOut, responses=responses(403, 422))
def scan_code(body: ScanIn, session: SessionDep, user: CurrentUser) -> ScanOut:
    """Venue staff verify a scanned or typed code at one of their venues: this node
    verifies it as the venue's gate (trust list, revocation lists, replays across the
    venue's operator, the venue's benefit rule) and keeps the use. A refusal is a 200
    with `admitted: false` and its `reason`; 403 for anyone not staff of the venue."""
    return scan_out(session, scanning.scan(session, user, body.venue_code, body.code))


def figures_args(
    start: date | None, end: date | None, period: str
) -> tuple[date, date, figures.Period]:
    today = datetime.now(figures.CHINA).date()
    end = end or today
    start = start or end - timedelta(days=29)
    if period not in ("day", "month"):
        raise ValidationFailed(
            "统计周期只能按日或按月", errors=[{"field": "period", "message": "day 或 month"}]
        )
    return start, end, "day" if period == "day" else "month"


@router.get(
    "/card/figures",
    response_model=FiguresOut,
    responses={**responses(403, 422), 200: {"content": {"text/csv": {}}}},
)
def card_figures(
    session: SessionDep,
    user: CurrentUser,
    start: date | None = None,
    end: date | None = None,
    period: Annotated[str, Query(max_length=10)] = "day",
    operator: Annotated[str | None, Query(max_length=60)] = None,
    format: Annotated[str, Query(max_length=10)] = "json",
) -> FiguresOut | Response:
    """Uses and concessions per city pair (holder's city -> venue's city), per operator
    and per day or month (China time; default the last 30 days), at the venues of this
    node's jurisdictions. `format=csv` for a spreadsheet. Administrators and supervisors
    see every operator; venue staff their own."""
    a, b, p = figures_args(start, end, period)
    got = figures.figures(session, user, start=a, end=b, period=p, operator=operator or None)
    if format == "csv":
        return Response(
            figures.to_csv(got.rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="card-figures-{a}-{b}.csv"'},
        )
    return FiguresOut(
        start=got.start,
        end=got.end,
        period=got.period,
        operator=got.operator,
        totals=got.totals,
        rows=[FigureRowOut(**vars(r)) for r in got.rows],
    )
