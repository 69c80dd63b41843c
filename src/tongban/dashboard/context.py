"""The dashboard context as the registry sees it."""

from tongban.dashboard import federation, models, tasks
from tongban.kernel.registry import Context, templates_of

CONTEXT = Context(
    name="dashboard",
    handlers=[federation],
    jobs=tasks.JOBS,
    templates=templates_of(__file__),
    models=models,
)
