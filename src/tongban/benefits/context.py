"""The benefits context (免申即享) as the registry sees it."""

from tongban.benefits import api, demo, models, subscribers, tasks, views
from tongban.kernel.registry import Context, templates_of

CONTEXT = Context(
    name="benefits",
    routers=[api.router],
    pages=[views.router],
    handlers=[subscribers],
    jobs=tasks.JOBS,
    templates=templates_of(__file__),
    demo=[demo.load],
    models=models,
)
