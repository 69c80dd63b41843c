"""Purpose-bound evidence requests between jurisdictions (once-only) and the resident's
log of who used their data (我的数据使用记录). Part of the `exchange` context of DESIGN.md,
kept in its own package."""

# What this context is (routers, pages, handlers, jobs, CLI, templates, demo, models) is
# declared once in `tongban.evidence.context`; this package stays import-light.
