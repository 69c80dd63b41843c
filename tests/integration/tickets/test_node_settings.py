"""The tickets context reads its settings from the node whose session it was given, not
from the process: two nodes in one process, each with its own working hours, each see
their own — with TONGBAN_TICKETS_* in the environment saying something else."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tongban.config import Settings, TicketSettings
from tongban.kernel.node import bind_settings
from tongban.tickets.service import common


def test_each_node_sees_its_own_ticket_settings(
    factory: sessionmaker[Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TONGBAN_TICKETS_WORKDAY_START", "06:00")
    early = settings.model_copy(
        update={"tickets": TicketSettings(workday_start="08:00", duplicate_metres=40.0)}
    )
    late = settings.model_copy(
        update={"tickets": TicketSettings(workday_start="10:30", workday_end="18:30")}
    )
    with bind_settings(factory, early)() as a, bind_settings(factory, late)() as b:
        assert common.working_hours(a).minutes_per_day == 9 * 60
        assert common.working_hours(b).minutes_per_day == 8 * 60
        assert common.settings(a).duplicate_metres == 40.0
        assert common.settings(b).duplicate_metres == 150.0
