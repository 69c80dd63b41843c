"""The cases context as the registry sees it."""

from tongban.cases import api, models, service, tasks, views, views_window, views_workbench
from tongban.kernel.registry import Context, templates_of

CONTEXT = Context(
    name="cases",
    routers=[api.router],
    pages=[views.router, views_window.router, views_workbench.router],
    handlers=[service],
    jobs=tasks.JOBS,
    templates=templates_of(__file__),
    models=models,
)
