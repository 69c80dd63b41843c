"""This node's signing keys as the registry sees them."""

from tongban.kernel.registry import Context
from tongban.keys import cli, models

CONTEXT = Context(name="keys", cli=[("keys", cli.app)], models=models)
