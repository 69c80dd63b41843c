"""The catalogue context as the registry sees it."""

from tongban.catalog import api, models, service, views
from tongban.kernel.registry import Context, templates_of

CONTEXT = Context(
    name="catalog",
    routers=[api.router],
    pages=[views.router],
    templates=templates_of(__file__),
    demo=[service.load_catalogue],
    models=models,
    # popular_matters() for the home page's 常办事项
    template_context=[views.home_context],
)
