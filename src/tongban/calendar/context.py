"""The working-day calendar as the registry sees it."""

from tongban.calendar import cli, models
from tongban.kernel.registry import Context

CONTEXT = Context(name="calendar", cli=[("calendar", cli.app)], models=models)
