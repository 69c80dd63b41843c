"""The two-nodes-in-one-process fixtures of the exchange tests, for the dashboard's
federation view."""

from integration.exchange.conftest import fed, fed_dbs, hosts, tools  # noqa: F401
