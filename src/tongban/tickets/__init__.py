"""12345-style work orders (工单): intake from every channel, routing by location across
borders, the closed loop, deadlines, supervision, figures, and Open311 GeoReport v2."""

# What this context is (routers, pages, handlers, jobs, CLI, templates, demo, models) is
# declared once in `tongban.tickets.context`; this package stays import-light.
