"""The exchange (outbox, inbox, dispatcher, signed HTTP) as the registry sees it."""

from tongban.exchange import api, cli, models, service
from tongban.kernel.registry import Context, templates_of

CONTEXT = Context(
    name="exchange",
    routers=[api.router],
    handlers=[service],
    cli=[("exchange", cli.app)],
    templates=templates_of(__file__),
    models=models,
)
