"""The identity context as the registry sees it."""

from tongban import demo
from tongban.identity import (
    api,
    api_assurance,
    cli,
    models,
    tasks,
    views,
    views_admin,
    views_assurance,
)
from tongban.kernel.registry import Context, templates_of

CONTEXT = Context(
    name="identity",
    routers=[api.router, api_assurance.router],
    pages=[views.router, views_assurance.router, views_admin.router],
    jobs=tasks.JOBS,
    cli=[("account", cli.app)],
    templates=templates_of(__file__),
    # The demo federation's accounts (after the regions' reference data they belong to).
    demo=[demo.load_accounts],
    models=models,
    # authority_type(user) for the navigation (base.html)
    template_context=[views.nav_context],
)
