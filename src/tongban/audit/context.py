"""The audit chain as the registry sees it."""

from tongban.audit import cli, handlers, models, tasks, views
from tongban.kernel.registry import Context, templates_of

CONTEXT = Context(
    name="audit",
    pages=[views.router],
    handlers=[handlers],
    jobs=tasks.JOBS,
    cli=[("audit", cli.app)],
    templates=templates_of(__file__),
    models=models,
)
