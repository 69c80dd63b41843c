"""Accounts, login, API tokens, roles; ID-number and credit-code validation."""

# What this context is (routers, pages, handlers, jobs, CLI, templates, demo, models) is
# declared once in `tongban.identity.context`; this package stays import-light.
