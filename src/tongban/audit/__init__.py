"""The tamper-evident audit chain of this node: hash-linked entries and signed
checkpoints. Part of the `exchange` context of DESIGN.md, kept in its own package."""

# What this context is (routers, pages, handlers, jobs, CLI, templates, demo, models) is
# declared once in `tongban.audit.context`; this package stays import-light.
