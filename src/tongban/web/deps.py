"""FastAPI dependencies as named aliases: the session owned by the request, the caller."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from tongban.config import Settings
from tongban.errors import NotAuthenticated, PermissionDenied
from tongban.identity import service as identity
from tongban.identity.models import Account


@contextmanager
def unit_of_work(request: Request) -> Iterator[Session]:
    """The request's unit of work: committed when the block ends, rolled back if it
    raises, closed on every path."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    session = factory()
    # Template context processors (the header's unread count) read with it.
    request.state.db_session = session
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work as a dependency: committed when the endpoint returns,
    rolled back if it raises."""
    with unit_of_work(request) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def node_settings(request: Request) -> Settings:
    """The settings of the node this app serves (the composition root, `create_app(node)`)."""
    settings: Settings = request.app.state.node.settings
    return settings


async def _settings_dep(request: Request) -> Settings:
    # A dependency that does no I/O is async: FastAPI calls it on the event loop
    # instead of hopping to the thread pool and back (issue 14). So are the others below.
    return node_settings(request)


SettingsDep = Annotated[Settings, Depends(_settings_dep)]


def bearer_token(request: Request) -> str | None:
    """The bearer token of the Authorization header, if any."""
    return _bearer(request)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return None


def client_address(request: Request) -> str:
    """The client's address as the server sees it (behind a reverse proxy, run uvicorn
    with --proxy-headers and --forwarded-allow-ips so that this is the real client)."""
    return request.client.host if request.client else "unknown"


def optional_account(
    request: Request, session: SessionDep, settings: SettingsDep
) -> Account | None:
    """The caller: a bearer token, or the server-side web session whose random id the
    signed cookie carries. A session that has ended (logout, password change …) is
    refused even if its cookie was copied before."""
    token = _bearer(request)
    if token:
        return identity.account_for_token(session, token)
    if "session" not in request.scope:
        return None
    session_id = request.session.get("sid")
    if not session_id:
        return None
    active = identity.resume_session(session, str(session_id), settings=settings)
    if active is None:
        # Keep the end of a session found idle or too old although this request will
        # likely fail (401) and roll back; nothing else has been written yet.
        session.commit()
        request.session.clear()
        return None
    request.state.web_session = active.session
    return active.account


def begin_web_session(request: Request, session: Session, account: Account) -> None:
    """Sign `account` in on this browser: a new server-side session (never the one from
    before sign-in: no fixation), its id in the signed cookie, a fresh CSRF token. A
    session this browser was already signed in with ends."""
    previous = getattr(request.state, "web_session", None)
    if previous is not None:
        identity.end_session(session, previous, identity.EndReason.REPLACED)
    session_id, row = identity.begin_session(
        session,
        account,
        client_ip=client_address(request),
        user_agent=request.headers.get("user-agent"),
        settings=node_settings(request),
    )
    request.session.clear()
    request.session["sid"] = session_id
    # A copy for pages and middleware that read the cookie; checks use the server's.
    request.session["csrf"] = row.csrf
    request.state.web_session = row


def end_web_session(request: Request, session: Session, reason: str) -> None:
    """Sign this browser out: its server-side session ends, the cookie is emptied."""
    row = getattr(request.state, "web_session", None)
    if row is not None:
        identity.end_session(session, row, reason)
        request.state.web_session = None
    request.session.clear()


def _required(account: Account | None) -> Account:
    """The caller, or 401 when there is none."""
    if account is None:
        raise NotAuthenticated("请先登录")
    return account


async def current_account(
    account: Annotated[Account | None, Depends(optional_account)],
) -> Account:
    return _required(account)


OptionalUser = Annotated[Account | None, Depends(optional_account)]
CurrentUser = Annotated[Account, Depends(current_account)]


T = TypeVar("T")

#: Set in the request's scope by `AuthenticatedUnit`: the request got past the
#: dependencies, where `CurrentUser` would have refused a bad caller.
AUTH_DEFERRED = "tongban.auth_deferred"


def _authenticated(session: Session, request: Request) -> Account:
    """`current_account` as the dependencies give it: the same rules, the same refusals."""
    return _required(optional_account(request, session, node_settings(request)))


def _unit(request: Request, work: Callable[[Session, Account], T]) -> T:
    """In a worker thread: the request's unit of work (`unit_of_work`), the caller, `work`."""
    with unit_of_work(request) as session:
        return work(session, _authenticated(session, request))


def authenticate_deferred(request: Request) -> None:
    """For a request refused by validation after it reached an `AuthenticatedUnit`
    endpoint's dependencies: the caller is checked first, as `CurrentUser` would have
    done before the validation (NotAuthenticated wins over 422); nothing is kept but what
    `optional_account` commits itself (an ended web session)."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    session = factory()
    try:
        _authenticated(session, request)
    finally:
        session.rollback()
        session.close()


class Unit:
    """The whole of a request's database work in ONE trip to the thread pool."""

    def __init__(self, request: Request) -> None:
        self.request = request

    async def run(self, work: Callable[[Session, Account], T]) -> T:
        """Open the session, authenticate the caller (bearer token or web session, as
        `CurrentUser`), run `work(session, account)` and commit — all in one thread-pool
        trip; any exception rolls back and propagates to the problem+json handlers."""
        return await run_in_threadpool(_unit, self.request, work)


async def authenticated_unit(request: Request) -> Unit:
    # No I/O: marks the request as having reached its dependencies, so that a body
    # refused by validation after this point is answered as `CurrentUser` would have
    # answered it first (web/problems.py calls `authenticate_deferred`).
    request.scope[AUTH_DEFERRED] = True
    return Unit(request)


#: For a hot endpoint (`async def`) that does its database work through `Unit.run`:
#: one thread-pool trip a request instead of five (the session dependency's enter and
#: exit, the caller, a sync endpoint, its response's validation) — issue 14.
AuthenticatedUnit = Annotated[Unit, Depends(authenticated_unit)]


def csrf_token(request: Request) -> str:
    """The CSRF token of the forms: the signed-in server session's own, or before
    sign-in one kept in the signed cookie, created on first use."""
    row = getattr(request.state, "web_session", None)
    if row is not None:
        return str(row.csrf)
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


async def verify_csrf(
    request: Request, _caller: Annotated[Account | None, Depends(optional_account)]
) -> None:
    """Every state-changing form carries the session's CSRF token: the server session's
    when signed in (an ended session's token is worth nothing), else the cookie's."""
    form = await request.form()
    sent = form.get("csrf_token")
    row = getattr(request.state, "web_session", None)
    expected = row.csrf if row is not None else request.session.get("csrf")
    if not expected or not isinstance(sent, str) or not secrets.compare_digest(sent, expected):
        raise PermissionDenied("页面已过期或请求来源无效，请刷新后重试", type="csrf-failed")


CsrfChecked = Depends(verify_csrf)


async def _form(request: Request) -> FormData:
    """The submitted form (multipart or urlencoded), read once and cached on the request,
    so that page handlers can stay synchronous (database work off the event loop)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(_form)]


def _count_statements_for_bench() -> None:
    """With TONGBAN_BENCH_COUNT_SQL=<file>, count every SQL statement this process sends
    and keep the running total in <file>, and the Session flushes that wrote something
    in <file>.flushes (both rewritten every 0.2 s): how benchmarks/bench_cases.py
    measures statements and flushes per submission from outside. Off unless set."""
    path = os.environ.get("TONGBAN_BENCH_COUNT_SQL")
    if not path:
        return
    lock = threading.Lock()
    total = [0, 0]  # statements, flushes

    def count(*_args: object) -> None:
        with lock:
            total[0] += 1

    def count_flush(*_args: object) -> None:  # after_flush: a flush that had work
        with lock:
            total[1] += 1

    def write() -> None:
        written = [-1, -1]
        while True:
            for i, name in enumerate((path, path + ".flushes")):
                if total[i] != written[i]:
                    written[i] = total[i]
                    with open(name + ".tmp", "w") as f:
                        f.write(str(written[i]))
                    os.replace(name + ".tmp", name)
            threading.Event().wait(0.2)

    event.listen(Engine, "before_cursor_execute", count)
    event.listen(Session, "after_flush", count_flush)
    threading.Thread(target=write, name="bench-sql-count", daemon=True).start()


_count_statements_for_bench()
