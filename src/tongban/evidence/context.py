"""The evidence context as the registry sees it."""

from tongban import demo
from tongban.evidence import api, demo_activity, handlers, models, service, views
from tongban.kernel.registry import Context, templates_of

CONTEXT = Context(
    name="evidence",
    routers=[api.router],
    pages=[views.router],
    handlers=[service, handlers],
    templates=templates_of(__file__),
    demo=[demo.seed_evidence_registers, demo_activity.load],
    models=models,
)
