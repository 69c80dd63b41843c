"""E-licences (电子证照): types, issuance as SD-JWT VCs, trust list, status lists,
the holder's wallet, presentation and verification."""

# What this context is (routers, pages, handlers, jobs, CLI, templates, demo, models) is
# declared once in `tongban.licences.context`; this package stays import-light.

# Its table joins Base.metadata wherever licences.models does (tongban.models, Alembic).
from tongban.licences import federation_models as _federation_models  # noqa: F401
