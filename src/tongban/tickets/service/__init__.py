"""Use cases of work orders (工单), split by concept:

- `intake`      — reports from every channel, routing by location and category, joint
                  border work orders, duplicates and merging;
- `loop`        — dispatch, accept/return, handling, fix, verification, feedback, reopen;
- `supervision` — deadlines (reminders, escalation), extensions, supervision orders (督办单);
- `majortasks`  — 重大项目 / 重点任务 with milestones and progress reports;
- `figures`     — on-time, reopen and satisfaction rates, hot spots;
- `open311`     — the GeoReport v2 view of work orders and its API keys;
- `photos`      — photos stored as uploads and linked to a work order;
- `journal`     — every change recorded as an event (and sent to a joint work order's
                  copies);
- `federation`, `findings` — joint work orders across nodes.

Other contexts import this package only (`from tongban.tickets import service`)."""

from tongban.tickets.service import figures, majortasks, supervision
from tongban.tickets.service.common import (
    actor_kind,
    can_see,
    effective,
    get,
    is_co_handler,
    region_index,
    taxonomy,
)
from tongban.tickets.service.intake import (
    PossibleDuplicate,
    Report,
    Routing,
    find_duplicates,
    merge,
    report,
    report_task,
    route,
    work_order_state,
)
from tongban.tickets.service.loop import (
    act,
    available_actions,
    co_note,
    list_work_orders,
    redispatch_choices,
)
from tongban.tickets.service.photos import store_photo

__all__ = [
    "figures",
    "majortasks",
    "supervision",
    "PossibleDuplicate",
    "Report",
    "Routing",
    "act",
    "actor_kind",
    "available_actions",
    "can_see",
    "co_note",
    "effective",
    "find_duplicates",
    "get",
    "is_co_handler",
    "list_work_orders",
    "merge",
    "redispatch_choices",
    "region_index",
    "report_task",
    "work_order_state",
    "report",
    "route",
    "store_photo",
    "taxonomy",
]
