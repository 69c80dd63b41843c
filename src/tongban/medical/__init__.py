"""Cross-region outpatient direct settlement (异地就医门诊直接结算) and inter-regional clearing."""

# What this context is (routers, pages, handlers, jobs, CLI, templates, demo, models) is
# declared once in `tongban.medical.context`; this package stays import-light.
