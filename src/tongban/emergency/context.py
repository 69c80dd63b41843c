"""The emergency context as the registry sees it."""

from tongban.emergency import aid, api, api_aid, cli, demo, models, sharing, tasks, views, views_aid
from tongban.kernel.registry import Context, templates_of

CONTEXT = Context(
    name="emergency",
    routers=[api.router, api_aid.router],
    pages=[views.router, views_aid.router],
    handlers=[sharing, aid],
    jobs=tasks.JOBS,
    cli=[("emergency", cli.app)],
    templates=templates_of(__file__),
    demo=[demo.load],
    models=models,
)
