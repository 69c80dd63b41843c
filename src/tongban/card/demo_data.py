"""The demo federation's venue staff: one account per demo venue (data/venues.json),
named after it, who may scan codes there (models.VenueStaff, granted by the card
context's demo loader once the accounts exist)."""

from __future__ import annotations

from tongban.card.benefits import venues


def staff_username(venue_code: str) -> str:
    return f"venue-{venue_code}"


def demo_staff(cities: set[str]) -> list[tuple[str, str, str]]:
    """(username, display name, city) of each demo venue's staff account in `cities`."""
    return [
        (staff_username(v.code), f"{v.name}工作人员", v.city)
        for v in sorted(venues().values(), key=lambda v: v.code)
        if v.city in cities
    ]
