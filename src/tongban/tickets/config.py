"""Settings of the tickets context, read from TONGBAN_TICKETS_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class TicketSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TONGBAN_TICKETS_", env_file=".env", extra="ignore"
    )

    #: A location within this many metres of another jurisdiction makes a joint work order.
    border_metres: float = 500.0
    #: A new report within this many metres of an open one of the same category is
    #: offered for merging.
    duplicate_metres: float = 150.0
    #: Area polygons (GeoJSON FeatureCollection); unset: the shipped synthetic ones.
    geojson_path: Path | None = None
    #: Category taxonomy (JSON); unset: the shipped data/categories.json.
    categories_path: Path | None = None
    #: Working hours, local time (Asia/Shanghai), for deadlines counted in hours.
    workday_start: str = "09:00"
    workday_end: str = "17:00"
    #: A reminder goes out once no more than this share of the allotted time is left.
    warn_fraction: float = 0.25
    #: Overdue by more than this many working hours: escalated from the authority's head
    #: to the supervisor.
    supervisor_after_hours: int = 8
    #: Working days the reporter has to give feedback before the work order closes itself.
    feedback_days: int = 3
    #: A grid cell (about 1 km) with at least this many work orders of one category in
    #: `hotspot_days` days is a hot spot.
    hotspot_min: int = 3
    hotspot_days: int = 90
    #: Seconds between runs of the reminder/escalation job.
    job_interval: float = 300.0


@lru_cache
def get_ticket_settings() -> TicketSettings:
    return TicketSettings()
