"""The list pages of cases, one way for every role: the officer's and supervisor's
workbench queue, the window's cases and a resident's "my cases" — filtered (query
string), paged by cursor (kernel.paging), rendered from column rows."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from tongban.cases import lists
from tongban.cases.pages import LABELS
from tongban.catalog import service as catalog
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel import paging
from tongban.regions import service as regions
from tongban.web.pages import render


def case_list_page(
    request: Request, session: Session, user: Account, template: str, path: str, **extra: Any
) -> Response:
    """`template` with one page of the cases `user` may see, filtered by the query
    string: `result` (rows, next cursor), `filters`, the paging links and, for staff,
    the matters and cities to filter by."""
    qp = request.query_params
    f = lists.filters(
        q=qp.get("q"),
        matter=qp.get("matter"),
        state=qp.get("state"),
        deadline_flag=qp.get("deadline_flag"),
        since=qp.get("since"),
        until=qp.get("until"),
        city=qp.get("city"),
    )
    size = qp.get("page_size")
    result = lists.page(session, user, f, lists.request(user, qp.get("cursor"), size))
    params = f.params() | {"page_size": size or ""}
    staff = user.role not in (Role.RESIDENT, Role.ENTERPRISE)
    return render(
        request,
        template,
        user,
        cases=result.rows,
        result=result,
        labels=LABELS,
        filters=f.params(),
        filtered=any(f.params().values()),
        path=path,
        first_link=paging.query_string(params),
        next_link=paging.query_string(params, cursor=result.next_cursor)
        if result.next_cursor
        else None,
        matters=[(m.code, m.name) for m in catalog.list_matters(session)] if staff else [],
        cities=[(c.code, c.name) for c in regions.list_cities(session)] if staff else [],
        **extra,
    )
