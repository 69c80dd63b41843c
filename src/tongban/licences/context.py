"""The e-licences context as the registry sees it."""

from tongban.kernel.registry import Context, templates_of
from tongban.licences import (
    api,
    cli,
    demo_activity,
    demo_data,
    federation_api,
    federation_models,
    handlers,
    models,
    tasks,
    views,
    wellknown,
)

CONTEXT = Context(
    name="licences",
    # federation_api first: its trust-list routes defer to the root.
    routers=[federation_api.router, api.router, wellknown.router],
    pages=[views.router],
    handlers=[handlers],
    jobs=tasks.JOBS,
    cli=[("licence", cli.app), ("trust", cli.trust_app)],
    templates=templates_of(__file__),
    demo=[demo_data.seed_demo_licences, demo_activity.load],
    models=models,
)
# Its second models module (the federation's trust tables) joins Base.metadata too.
assert federation_models
