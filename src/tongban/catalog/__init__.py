"""The service-matter catalogue (事项)."""

# What this context is (routers, pages, handlers, jobs, CLI, templates, demo, models) is
# declared once in `tongban.catalog.context`; this package stays import-light.
