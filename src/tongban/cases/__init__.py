"""Applications (办件): receive anywhere, route, handle, deliver, rate."""

# What this context is (routers, pages, handlers, jobs, CLI, templates, demo, models) is
# declared once in `tongban.cases.context`; this package stays import-light.
