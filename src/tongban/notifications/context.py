"""The notifications context as the registry sees it: the message centre (站内信), its
API, the outbox delivery job, and the header's unread count (a template context
processor)."""

from tongban.kernel.registry import Context, templates_of
from tongban.notifications import api, models, service, tasks, views

CONTEXT = Context(
    name="notifications",
    routers=[api.router],
    pages=[views.router],
    handlers=[service],
    jobs=tasks.JOBS,
    templates=templates_of(__file__),
    models=models,
    template_context=[views.header_context],
)
