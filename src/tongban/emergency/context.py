"""The emergency context as the registry sees it."""

from tongban.emergency import api, cli, demo, models, sharing, tasks, views
from tongban.kernel.registry import Context, templates_of

CONTEXT = Context(
    name="emergency",
    routers=[api.router],
    pages=[views.router],
    handlers=[sharing],
    jobs=tasks.JOBS,
    cli=[("emergency", cli.app)],
    templates=templates_of(__file__),
    demo=[demo.load],
    models=models,
)
