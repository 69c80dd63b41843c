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
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, false, or_
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
        out = []
        for k in self.keys:
            c = k.column.desc() if k.desc else k.column.asc()
            out.append(c.nulls_last() if k.nullable else c)
        return out


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


def _refused(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": field, "message": message}])


def page_size(value: int | str | None, default: int = DEFAULT_SIZE) -> int:
    if value in (None, ""):
        return default
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise _refused("page_size", f"每页条数须为 1 至 {MAX_SIZE} 的整数") from None
    if not 1 <= size <= MAX_SIZE:
        raise _refused("page_size", f"每页条数须为 1 至 {MAX_SIZE} 的整数")
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
    bad = _refused("cursor", "翻页参数无效，请从第一页重新浏览")
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


def after_clause(order: Order, values: Sequence[Any]) -> Any:
    first, v = order.keys[0], values[0]
    clause = _after(order.keys, values)
    if v is not None and not first.nullable:
        # A plain range first, so that the index is entered at the cursor.
        bound = first.column <= v if first.desc else first.column >= v
        clause = and_(bound, clause)
    return clause


def fetch(session: Session, stmt: Select[Any], order: Order, page: PageRequest) -> Page:
    """One page of `stmt` (whose columns must include every key's column, labelled
    by the column's name) in `order`, after the cursor of `page`."""
    if page.after is not None:
        stmt = stmt.where(after_clause(order, page.after))
    rows = list(session.execute(stmt.order_by(*order.clauses()).limit(page.size + 1)))
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
