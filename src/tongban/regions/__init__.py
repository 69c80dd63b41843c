"""Jurisdictions, cities (GB/T 2260), districts and authorities."""

# What this context is (routers, pages, handlers, jobs, CLI, templates, demo, models) is
# declared once in `tongban.regions.context`; this package stays import-light.
