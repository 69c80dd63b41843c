"""The virtualwindow context as the registry sees it."""

from tongban.kernel.registry import Context, templates_of
from tongban.virtualwindow import models, recording, service, views

CONTEXT = Context(
    name="virtualwindow",
    pages=[views.router],
    handlers=[service],
    templates=templates_of(__file__),
    models=models,
    jobs=recording.JOBS,
)
