"""The work-orders context as the registry sees it."""

from tongban.kernel.registry import Context, templates_of
from tongban.tickets import (
    api,
    cli,
    handlers,
    models,
    open311,
    tasks,
    views,
    views_supervision,
)

CONTEXT = Context(
    name="tickets",
    routers=[api.router, open311.router],
    # Fixed paths (/tickets/figures, /tickets/tasks …) before /tickets/{ticket_id}.
    pages=[views_supervision.router, views.router],
    handlers=[handlers],
    jobs=tasks.JOBS,
    cli=[("tickets", cli.app)],
    templates=templates_of(__file__),
    models=models,
)
