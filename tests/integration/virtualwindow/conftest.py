"""Two nodes in one process over signed HTTP (the fixtures of tests/integration/exchange:
node A serves 上海 and 安徽, node B 江苏 and 浙江), with their queries routed in-process."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from integration.exchange.conftest import fed, fed_dbs, hosts, tools  # noqa: F401 - fixtures
from tongban.exchange import query


@pytest.fixture
def pair(fed: dict[str, Any], hosts: Any) -> Iterator[tuple[Any, Any]]:  # noqa: F811
    a, b = fed["node-a"], fed["node-b"]
    client = httpx.Client(transport=hosts)
    query.install_client(a.id, client)
    query.install_client(b.id, client)
    yield a, b
    query.install_client(a.id, None)
    query.install_client(b.id, None)
    client.close()
