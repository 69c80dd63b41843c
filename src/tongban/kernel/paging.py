"""One way to page a list (work orders, cases, settlements, audit entries): keyset
pagination over a total order of columns, with an opaque cursor.

A list declares its order once, as keys that end in a unique column::

    ORDER = paging.Order("cases.queue", (
        paging.Key(Case.deadline, date, nullable=True),    # NULLS LAST
        paging.Key(Case.submitted_at, datetime),
        paging.Key(Case.id, uuid.UUID),
    ))
    page = paging.fetch(session, stmt, ORDER, paging.request(cursor, size))

`fetch` orders the statement, reads one row more than the page to know whether there
is a next one (no COUNT over a million rows) and returns the rows with the cursor of
the next page: the last row's key values, JSON, base64url, and a checksum that ties
it to its list. A cursor that does not decode, belongs to another list or carries a
value of the wrong type is a 422 naming the field `cursor`; a page size outside
1..MAX_SIZE is a 422 naming `page_size`. The cursor only says where to continue: the
statement's own conditions (who may see what) apply to every page.

The condition "after the cursor" leads with a plain range on the first key (``c >= v``)
so that an index on the order's columns is entered at the cursor, not scanned from its
start.

A page's SELECT is built once per shape and process: `fetch` keys it by the list's
order, the SQL shape of each branch (SQLAlchemy's cache key, which leaves out the
values) and which cursor values are NULL; the cursor's values, the limit and the values
of the branch's own conditions (the filters, who may see what) are bound parameters of
that one statement. Building the UNION ALL of subqueries anew for every request cost
more than running it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, Select, and_, bindparam, false, or_, select, union_all
from sqlalchemy.orm import Session

from tongban.errors import ValidationFailed

DEFAULT_SIZE = 50
MAX_SIZE = 200


@dataclass(frozen=True)
class Key:
    """One column of a list's order: its type (for the cursor), direction, NULLs last."""

    column: Any
    type: type
    desc: bool = False
    nullable: bool = False


@dataclass(frozen=True)
class Order:
    name: str  # ties a cursor to its list
    keys: tuple[Key, ...]

    def clauses(self) -> list[Any]:
        return _ordered(self)


@dataclass(frozen=True)
class PageRequest:
    size: int = DEFAULT_SIZE
    after: tuple[Any, ...] | None = None  # decoded key values of the last row seen
    cursor: str = ""


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    next_cursor: str | None  # None: this is the last page
    first: bool  # no cursor was given


@dataclass(frozen=True)
class Numbered:
    """One numbered page of a list already read whole (`numbered`): its rows, which page
    (from 1) of how many, the position (from 1) of its first row, and the query string of
    the request's other parameters, for the pager's links."""

    rows: list[Any]
    number: int
    pages: int
    total: int
    first: int
    query: str = ""


def numbered(rows: Sequence[Any], page: int, size: int, query: str = "") -> Numbered:
    """Page `page` (from 1; out of range: the nearest page) of `rows`, a list computed in
    memory whole (sums per city and item, figures per day) rather than read from a table
    in an order: lists read from a table page with `fetch` and a cursor."""
    pages = max(1, -(-len(rows) // size))
    number = min(max(page, 1), pages)
    start = (number - 1) * size
    return Numbered(list(rows[start : start + size]), number, pages, len(rows), start + 1, query)


def refused(field: str, message: str) -> ValidationFailed:
    """A 422 naming the one query parameter that is wrong (a list's filter or paging)."""
    return ValidationFailed(message, errors=[{"field": field, "message": message}])


def page_size(value: int | str | None, default: int = DEFAULT_SIZE) -> int:
    if value in (None, ""):
        return default
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise refused("page_size", f"每页条数须为 1 至 {MAX_SIZE} 的整数") from None
    if not 1 <= size <= MAX_SIZE:
        raise refused("page_size", f"每页条数须为 1 至 {MAX_SIZE} 的整数")
    return size


def _checksum(name: str, payload: bytes) -> str:
    return hashlib.blake2b(payload, key=f"tongban-page:{name}".encode(), digest_size=6).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def encode(order: Order, values: Sequence[Any]) -> str:
    payload = json.dumps([_plain(v) for v in values], separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_checksum(order.name, payload)}"


def _typed(key: Key, value: Any) -> Any:
    if value is None:
        if not key.nullable:
            raise ValueError("null")
        return None
    if key.type is datetime:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment
    if key.type is date:
        return date.fromisoformat(value)
    if key.type is uuid.UUID:
        return uuid.UUID(value)
    if key.type is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("int")
        return value
    if not isinstance(value, str):
        raise ValueError("str")
    return value


def decode(order: Order, cursor: str) -> tuple[Any, ...]:
    """The key values a cursor carries; any tampering is a 422 naming `cursor`."""
    bad = refused("cursor", "翻页参数无效，请从第一页重新浏览")
    body, _, check = cursor.partition(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        raise bad from None
    if not check or len(cursor) > 400 or check != _checksum(order.name, payload):
        raise bad
    try:
        values = json.loads(payload)
        if not isinstance(values, list) or len(values) != len(order.keys):
            raise ValueError("shape")
        return tuple(_typed(k, v) for k, v in zip(order.keys, values, strict=True))
    except (ValueError, TypeError):
        raise bad from None


def request(
    order: Order, cursor: str | None, size: int | str | None, default: int = DEFAULT_SIZE
) -> PageRequest:
    n = page_size(size, default)
    if not cursor:
        return PageRequest(size=n)
    return PageRequest(size=n, after=decode(order, cursor), cursor=cursor)


def _after(keys: Sequence[Key], values: Sequence[Any]) -> Any:
    """Rows strictly after `values` in the order of `keys`."""
    if not keys:
        return false()
    k, v, rest = keys[0], values[0], _after(keys[1:], values[1:])
    if v is None:  # NULLs come last: only NULLs can follow, ordered by the rest
        return and_(k.column.is_(None), rest)
    beyond = k.column < v if k.desc else k.column > v
    if k.nullable:
        beyond = or_(beyond, k.column.is_(None))
    return or_(beyond, and_(k.column == v, rest))


def _after_parts(stmt: Select[Any], order: Order, values: Sequence[Any]) -> list[Select[Any]]:
    """`stmt` narrowed to the rows after `values`: one part, or two when the first key is
    nullable and the cursor's value is not NULL — the rows from that value on (a range
    the index is entered at) and the NULLs that follow them (the index's tail) — since
    their OR would make the database walk the index from its start."""
    first, v = order.keys[0], values[0]
    if not first.nullable or v is None:
        return [stmt.where(after_clause(order, values))]
    bound = first.column <= v if first.desc else first.column >= v
    return [stmt.where(bound, after_clause(order, values)), stmt.where(first.column.is_(None))]


def after_clause(order: Order, values: Sequence[Any]) -> Any:
    first, v = order.keys[0], values[0]
    clause = _after(order.keys, values)
    if v is not None and not first.nullable:
        # A plain range first, so that the index is entered at the cursor.
        bound = first.column <= v if first.desc else first.column >= v
        clause = and_(bound, clause)
    return clause


def _ordered(order: Order, source: Any = None) -> list[Any]:
    """The ORDER BY of `order`, on its own columns or on `source`'s of the same names."""
    out = []
    for k in order.keys:
        col = k.column if source is None else source.c[k.column.key]
        c = col.desc() if k.desc else col.asc()
        out.append(c.nulls_last() if k.nullable else c)
    return out


def page_query(
    stmt: Select[Any] | Sequence[Select[Any]], order: Order, page: PageRequest
) -> Select[Any]:
    """The one SELECT of a page (see `fetch`): one row more than the page, with the
    cursor's values written in (built anew on every call; `fetch` uses `_cached`)."""
    branches = [stmt] if isinstance(stmt, Select) else list(stmt)
    return _build(branches, order, page.after, page.size + 1)


def _build(
    branches: list[Select[Any]], order: Order, after: Sequence[Any] | None, n: Any
) -> Select[Any]:
    """The page's SELECT: `after` holds the cursor's values (or bound parameters standing
    for them, None where the value is NULL); `n` the limit (or its parameter)."""
    if after is not None:
        branches = [part for b in branches for part in _after_parts(b, order, after)]
    if len(branches) == 1:
        return branches[0].order_by(*order.clauses()).limit(n)
    parts = [b.order_by(*order.clauses()).limit(n).subquery() for b in branches]
    union = union_all(*(select(p) for p in parts)).subquery()
    return select(union).order_by(*_ordered(order, union)).limit(n)


@dataclass(frozen=True)
class _Template:
    """A page's SELECT built once for a shape, and the names of its bound parameters:
    per branch, in the order of the branch's cache key."""

    stmt: Select[Any]
    branch_params: tuple[tuple[str, ...], ...]


#: Page statements by shape (a list has a few dozen: roles × filters given × cursor).
_TEMPLATES: dict[Hashable, _Template] = {}
_TEMPLATES_MAX = 2000
_LIMIT = "page_limit"


def _cursor_param(i: int) -> str:
    return f"page_after_{i}"


def _cached(
    branches: list[Select[Any]], order: Order, page: PageRequest
) -> tuple[Select[Any], dict[str, Any]]:
    """The page's SELECT for the shape of `branches` (built on first use) and the values
    of this request for its parameters."""
    keys = [b._generate_cache_key() for b in branches]
    nulls = None if page.after is None else tuple(v is None for v in page.after)
    if any(k is None for k in keys):  # not cacheable (none of ours): built every time
        return page_query(branches, order, page), {}
    shape = (order.name, nulls, *(k.key for k in keys if k is not None))
    template = _TEMPLATES.get(shape)
    if template is None:
        after: list[Any] | None = (
            None
            if page.after is None
            else [
                None if v is None else bindparam(_cursor_param(i)) for i, v in enumerate(page.after)
            ]
        )
        stmt = _build(branches, order, after, bindparam(_LIMIT, type_=Integer))
        template = _Template(
            stmt=stmt,
            branch_params=tuple(tuple(p.key for p in k.bindparams) for k in keys if k is not None),
        )
        if len(_TEMPLATES) >= _TEMPLATES_MAX:
            _TEMPLATES.clear()
        _TEMPLATES[shape] = template
    params: dict[str, Any] = {_LIMIT: page.size + 1}
    for branch_names, key in zip(template.branch_params, keys, strict=True):
        assert key is not None
        for name, param in zip(branch_names, key.bindparams, strict=True):
            params[name] = param.effective_value
    if page.after is not None:
        for i, v in enumerate(page.after):
            if v is not None:
                params[_cursor_param(i)] = v
    return template.stmt, params


def fetch(
    session: Session, stmt: Select[Any] | Sequence[Select[Any]], order: Order, page: PageRequest
) -> Page:
    """One page of `stmt` (whose columns must include every key's column, under the
    column's name) in `order`, after the cursor of `page`.

    `stmt` may be a list of disjoint branches (e.g. "led here" and "co-handled here,
    led elsewhere") whose OR would not use an index: each branch then reads its own
    page along its own index, and the page is the first rows of their union."""
    branches = [stmt] if isinstance(stmt, Select) else list(stmt)
    query, params = _cached(branches, order, page)
    rows = list(session.execute(query, params))
    more = len(rows) > page.size
    rows = rows[: page.size]
    cursor = None
    if more and rows:
        last = rows[-1]
        cursor = encode(order, [getattr(last, k.column.key) for k in order.keys])
    return Page(rows=rows, next_cursor=cursor, first=page.after is None)


def query_string(filters: dict[str, Any], **changes: Any) -> str:
    """The list's filters (empty ones left out) with `changes`, for the paging links:
    the filters stay in the query string from page to page."""
    from urllib.parse import urlencode

    merged = {**filters, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


def link_next(request: Any, response: Any, page: Page) -> None:
    """An API's next page, as an RFC 8288 `Link: <url>; rel="next"` header (the body
    stays the list it always was)."""
    if page.next_cursor is None:
        return
    url = request.url.include_query_params(cursor=page.next_cursor)
    response.headers["Link"] = f'<{url}>; rel="next"'


def day_range(
    since: str | None, until: str | None, *, since_field: str = "since", until_field: str = "until"
) -> tuple[date | None, date | None]:
    """A list's date filter (local days, both ends included); a date that does not parse,
    or an end before the start, is a 422 naming the field."""

    def day(value: str | None, field: str) -> date | None:
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise refused(field, "日期格式应为 YYYY-MM-DD") from None

    start, end = day(since, since_field), day(until, until_field)
    if start and end and end < start:
        raise refused(until_field, "截止日期不能早于起始日期")
    return start, end
