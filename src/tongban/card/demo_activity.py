"""A year of demo card uses (用卡) at the demo venues, run by `tongban demo` after the demo
cards and before the dashboard's refresh; idempotent.

Each demo venue (data/venues.json) in a city this node serves gets a gate, registered
as an administrator registers one (`gateauth.register`, with a key of its own), and its
uses are stored as its upload stores each new one (`usage.keep_use`), the codes it was
shown over the last 365 days (twelve months): the metro and the senior lane
most (30–70 a month), then scenic spots, museums and libraries (8–35), more at
weekends and in the summer and Golden Week months. About six in ten holders come from
the venue's own city, the others from any city of the federation (the cards being
synthetic, a use of another node's card is not forwarded there, as production's
`card.used` would be: no node holds them); about one
in twenty codes is refused (expired, clock skew, a replay, a reported-lost card, not
eligible), the others admitted under a rule of the venue's rule book. A gate uploads
its uses minutes after they happen, so each use's `received_at` is set so; the cards
are synthetic (references of no demo card), so no holder's 用卡记录 changes."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tongban.card import gateauth, usage
from tongban.card.benefits import Venue, rule_book, venues
from tongban.card.models import CardUse
from tongban.card.verifier import Refusal
from tongban.crypto.signing import b64u
from tongban.db import utcnow
from tongban.exchange import service as exchange
from tongban.regions import service as regions

GATE_PREFIX = "demo-gate-"
MONTHS = 12
#: A twelfth of a year, in days: the months cover the last 365 days.
MONTH = 365 / MONTHS
#: Uses a month at a venue of each kind.
PER_MONTH = {
    "transit": (35, 70),
    "senior_lane": (30, 60),
    "scenic": (12, 35),
    "museum": (10, 30),
    "library": (8, 22),
}
SAME_CITY = 0.6
REFUSED = 1 / 20
#: Why a refused code was refused, and how often.
REASONS = {
    Refusal.EXPIRED: 5,
    Refusal.CLOCK_SKEW: 2,
    Refusal.REPLAYED: 2,
    Refusal.REVOKED: 1,
    Refusal.NOT_ELIGIBLE: 2,
}


def load(session: Session) -> int:
    """Register the demo gates and upload their year of uses (unless a demo gate has
    uploaded already); how many uses."""
    if session.scalar(
        select(func.count()).select_from(CardUse).where(CardUse.gate_id.like(f"{GATE_PREFIX}%"))
    ):
        return 0
    cities = sorted(regions.list_cities(session), key=lambda c: c.code)
    jurisdiction = {c.code: c.jurisdiction_code for c in cities}
    rng = random.Random(20261128)
    added = 0
    for place in sorted(venues().values(), key=lambda v: v.code):
        j = jurisdiction.get(place.city)
        if j is None or not exchange.serves_here(session, j):
            continue
        added += _venue(session, rng, place, cities)
    session.flush()
    return added


def _gate_key() -> dict[str, str]:
    raw = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}


def _venue(session: Session, rng: random.Random, place: Venue, cities: list[Any]) -> int:
    gate = gateauth.register(session, f"{GATE_PREFIX}{place.code}", place.code, _gate_key())
    rules = rule_book().rules_for(place.city, place.kind)
    admit = [r for r in rules if r.eligible]
    deny = [r for r in rules if not r.eligible]
    now = utcnow()
    start = now - timedelta(days=MONTH * MONTHS)
    lo, hi = PER_MONTH.get(place.kind, (10, 30))
    uses: list[usage.UseIn] = []
    for month in range(MONTHS):
        mid = (start + timedelta(days=month * MONTH + 15)).month
        busy = 1.3 if mid in (7, 8, 10) and place.kind != "library" else 1.0
        for _ in range(round(rng.randint(lo, hi) * busy)):
            day = rng.random() * MONTH
            at = start + timedelta(days=month * MONTH + day, hours=rng.uniform(0, 12))
            if at.weekday() < 5 and rng.random() < 0.3:
                at += timedelta(days=5 - at.weekday())  # weekends are busier
            if at >= now - timedelta(hours=1):
                continue
            uses.append(_use(rng, place, at, cities, admit, deny))
    # Each use as the upload stores a new one (`usage.keep_use`), the demo's fresh ids
    # needing no check for duplicates; written in one flush, not one per use. Not sent to
    # the card's node: the cards are synthetic, no node holds them (in a demo federation
    # of several nodes thousands of `card.used` messages would only be refused there).
    with session.no_autoflush:
        for u in uses:
            row = usage.keep_use(session, u, gate.gate_id, place, flush=False, forward=False)
            # Uploaded by the gate a few minutes after the use.
            row.received_at = u.used_at + timedelta(minutes=rng.randint(1, 30))
    session.flush()
    return len(uses)


def _use(
    rng: random.Random,
    place: Venue,
    at: Any,
    cities: list[Any],
    admit: list[Any],
    deny: list[Any],
) -> usage.UseIn:
    home = next((c for c in cities if c.code == place.city), None)
    city = home if home is not None and rng.random() < SAME_CITY else rng.choice(cities)
    reason: Refusal | None = None
    if rng.random() < REFUSED:
        reason = rng.choices(list(REASONS), list(REASONS.values()))[0]
    rule = None
    if reason is None and admit:
        rule = rng.choice(admit)
    elif reason is Refusal.NOT_ELIGIBLE and deny:
        rule = rng.choice(deny)
    return usage.UseIn(
        id=uuid.uuid4(),
        venue_code=place.code,
        used_at=at,
        code_time=int(at.timestamp()) - rng.randint(1, 20),
        admitted=reason is None,
        reason=reason.value if reason is not None else None,
        card_jurisdiction=city.jurisdiction_code,
        card_city=city.code,
        card_ref=f"{rng.getrandbits(64):016x}",
        rule=rule.id if rule is not None else None,
        benefit=rule.benefit if rule is not None and reason is None else None,
        why=rule.why if rule is not None else None,
    )
