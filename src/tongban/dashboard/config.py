"""Settings of the dashboard context (TONGBAN_DASHBOARD_* environment variables)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from tongban.dashboard.domain import DEFAULT_THRESHOLD


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TONGBAN_DASHBOARD_", env_file=".env", extra="ignore"
    )

    #: A published cell counting fewer events than this is suppressed (0 < n < threshold).
    threshold: int = DEFAULT_THRESHOLD
    #: Seconds between refreshes by the worker.
    refresh_seconds: float = 300.0
    #: Rows of tables read by time are folded in only this many seconds after their time.
    settle_seconds: float = 300.0
    #: Seconds between publications of this node's aggregates to the other nodes.
    publish_seconds: float = 3600.0
    #: PostgreSQL: `work_mem` for the refresh's transaction (SET LOCAL), so that a
    #: batch's grouping stays in memory.
    pg_work_mem: str = "256MB"


@lru_cache
def dashboard_settings() -> DashboardSettings:
    return DashboardSettings()
