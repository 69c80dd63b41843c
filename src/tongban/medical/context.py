"""Cross-region medical settlement as the registry sees it."""

from tongban.kernel.registry import Context, templates_of
from tongban.medical import (
    api,
    clearing_exchange,
    cli,
    demo_activity,
    demo_data,
    insured,
    models,
    service,
    settlement,
    tasks,
    views,
)

CONTEXT = Context(
    name="medical",
    routers=[api.router],
    pages=[views.router],
    # Their import registers the queries this node answers: the insured side's
    # (eligibility, reserve, confirm, release, reverse), the treatment side's
    # (settlement_status) and either side's of a clearing statement.
    handlers=[service, insured, settlement, clearing_exchange],
    jobs=tasks.JOBS,
    cli=[("medical", cli.app)],
    templates=templates_of(__file__),
    demo=[demo_data.load_medical_demo, demo_activity.load],
    models=models,
)
