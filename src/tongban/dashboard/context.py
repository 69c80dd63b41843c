"""The dashboard context as the registry sees it."""

from tongban.dashboard import api, cli, demo, federation, models, tasks, views
from tongban.kernel.registry import Context, templates_of

CONTEXT = Context(
    name="dashboard",
    routers=[api.router],
    pages=[views.router],
    handlers=[federation],
    jobs=tasks.JOBS,
    cli=[("dashboard", cli.app)],
    templates=templates_of(__file__),
    models=models,
    # A month of cross-border cases (after the cases' reference data), then a refresh.
    demo=[demo.load],
)
