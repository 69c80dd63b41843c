"""The two-nodes-in-one-process fixtures of the exchange tests (node A serves 上海 and
安徽, node B 江苏 and 浙江, each with its own database and app, over signed HTTP through
in-process transports), for the emergency tests across nodes."""

from integration.exchange.conftest import fed, fed_dbs, hosts, tools  # noqa: F401
