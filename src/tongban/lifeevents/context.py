"""The lifeevents context as the registry sees it."""

from tongban.kernel.registry import Context, templates_of
from tongban.lifeevents import api, models, service, views

CONTEXT = Context(
    name="lifeevents",
    routers=[api.router],
    pages=[views.router],
    handlers=[service],
    templates=templates_of(__file__),
    models=models,
)
