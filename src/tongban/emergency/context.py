"""The emergency context as the registry sees it."""

from tongban.emergency import (
    aid,
    api,
    api_aid,
    api_capacity,
    api_incidents,
    capacity,
    cli,
    demo,
    handover,
    incidents,
    models,
    sharing,
    tasks,
    views,
    views_aid,
    views_capacity,
    views_incidents,
)
from tongban.kernel.registry import Context, templates_of

CONTEXT = Context(
    name="emergency",
    routers=[api.router, api_aid.router, api_incidents.router, api_capacity.router],
    pages=[views.router, views_aid.router, views_incidents.router, views_capacity.router],
    handlers=[sharing, aid, incidents, handover, capacity],
    jobs=[*tasks.JOBS, *incidents.JOBS],
    cli=[("emergency", cli.app)],
    templates=templates_of(__file__),
    demo=[demo.load],
    models=models,
)
