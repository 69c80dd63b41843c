"""The regions context as the registry sees it."""

from tongban.kernel.registry import Context
from tongban.regions import api, models, service

CONTEXT = Context(
    name="regions",
    routers=[api.router],
    demo=[service.load_reference_data],
    models=models,
)
