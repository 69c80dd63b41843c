"""Everything that crosses a jurisdiction's border: outbox, inbox, dispatcher, and the
signed HTTP messages between the nodes of a federation (docs/federation.md)."""

# What this context is (routers, pages, handlers, jobs, CLI, templates, demo, models) is
# declared once in `tongban.exchange.context`; this package stays import-light.
