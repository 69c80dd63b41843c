"""The card context as the registry sees it."""

from tongban.card import api, cli, demo_activity, gate_cli, models, service, tasks, views
from tongban.kernel.registry import Context, templates_of

CONTEXT = Context(
    name="card",
    routers=[api.router],
    pages=[views.router],
    handlers=[service],
    jobs=tasks.JOBS,
    cli=[("card", cli.app), ("gate", gate_cli.app)],
    templates=templates_of(__file__),
    demo=[service.load_demo_cards, service.load_demo_staff, demo_activity.load],
    models=models,
)
