"""Joint emergency response across the federation (公共卫生等重大突发事件联防联控, 应急物资
协同保障): each city's reserves of emergency supplies, what each jurisdiction shares of
them, and mutual aid asked, promised, shipped and received across borders."""

# What this context is (routers, pages, handlers, jobs, CLI, templates, demo, models) is
# declared once in `tongban.emergency.context`; this package stays import-light.
