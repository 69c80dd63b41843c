"""The card context as the registry sees it."""

from tongban.card import api, cli, models, service, views
from tongban.kernel.registry import Context, templates_of

CONTEXT = Context(
    name="card",
    routers=[api.router],
    pages=[views.router],
    handlers=[service],
    cli=[("card", cli.app)],
    templates=templates_of(__file__),
    demo=[service.load_demo_cards],
    models=models,
)
