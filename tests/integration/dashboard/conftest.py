"""The two-nodes-in-one-process fixtures of the exchange tests, for the dashboard's
federation view."""

import pytest

from integration.exchange.conftest import fed, fed_dbs, hosts, tools  # noqa: F401
from tongban.dashboard import cellkey


@pytest.fixture
def without_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Published figures without their noise (cellkey.noise): for the tests of what a
    figure counts — which events, periods, filters, roll-up paths — compared with an
    exact computation. The noise itself is tested in test_cell_keys.py, on every
    published path."""
    monkeypatch.setattr(cellkey, "noise", lambda n, ckey: 0)
