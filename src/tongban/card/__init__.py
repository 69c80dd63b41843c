"""The resident service card (社会保障卡 / 居民服务一卡通) and its dynamic code (一码服务):
cards and holders, device credentials, offline verification at gates and venues, and
same-city benefits (同城待遇)."""

# What this context is (routers, pages, handlers, jobs, CLI, templates, demo, models) is
# declared once in `tongban.card.context`; this package stays import-light.
