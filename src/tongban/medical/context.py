"""Cross-region medical settlement as the registry sees it."""

from tongban.kernel.registry import Context, templates_of
from tongban.medical import api, cli, demo_data, models, service, tasks, views

CONTEXT = Context(
    name="medical",
    routers=[api.router],
    pages=[views.router],
    handlers=[service],
    jobs=tasks.JOBS,
    cli=[("medical", cli.app)],
    templates=templates_of(__file__),
    demo=[demo_data.load_medical_demo],
    models=models,
)
