"""The emergency context as other modules may use it (a context imports another only
through its service): reserves, the reserve table, duties and alerts. Use cases live in
stock.py, access.py, alerts.py and sharing.py; this module names what is public."""

from __future__ import annotations

from tongban.emergency.access import duties_of, grant, has_duty, may_view
from tongban.emergency.alerts import check_stock, open_alerts
from tongban.emergency.catalogue import catalogue
from tongban.emergency.demo import load as load_demo
from tongban.emergency.sharing import publish_all
from tongban.emergency.stock import (
    Filters,
    StockRow,
    add_point,
    aggregate,
    list_points,
    lots,
    move,
    set_quota,
    table,
    upload,
)

__all__ = [
    "Filters",
    "StockRow",
    "add_point",
    "aggregate",
    "catalogue",
    "check_stock",
    "duties_of",
    "grant",
    "has_duty",
    "list_points",
    "load_demo",
    "lots",
    "may_view",
    "move",
    "open_alerts",
    "publish_all",
    "set_quota",
    "table",
    "upload",
]
