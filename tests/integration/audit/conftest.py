"""Two federated nodes for the witnessing tests: the `fed` fixture of the exchange tests
(each node its own database, signed HTTP between them in process)."""

from integration.exchange.conftest import fed, fed_dbs, hosts  # noqa: F401
