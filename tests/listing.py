"""Helpers of the list tests: counting the SQL statements a piece of work sends (for
"a page of N rows costs a constant number of statements"), and walking an API list's
pages by its `Link: <…>; rel="next"` headers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event


@contextmanager
def counted(engine: Any) -> Iterator[list[str]]:
    """The statements sent on `engine` inside the block, first line of each."""
    seen: list[str] = []

    def count(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement.split("\n")[0][:120])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def api_pages(
    client: Any, headers: dict[str, str], url: str, key: str = "number"
) -> list[list[Any]]:
    """The `key` of every row of every page of an API list, page by page."""
    pages: list[list[Any]] = []
    next_url: str | None = url
    while next_url:
        r = client.get(next_url, headers=headers)
        assert r.status_code == 200, r.text
        pages.append([row[key] for row in r.json()])
        link = r.headers.get("link")
        next_url = link[1 : link.index(">")] if link else None
        assert len(pages) < 50, "the pages do not end"
    return pages
