"""Defence in depth at the edge of the app, as plain ASGI middleware.

- `SecurityHeaders`: every response says `nosniff`, may not be framed and sends no full
  Referer off-site; pages get a Content-Security-Policy that allows scripts only from
  this node (`/static/...`) or carrying the response's nonce (`request.state.csp_nonce`).
- `CookieApiOriginCheck`: a state-changing `/api/` request authenticated by the session
  cookie (not by a bearer token) must come from this node's own pages: a matching
  `Origin` (or `Referer`), or the session's CSRF token in `X-CSRF-Token`. Browsers attach
  cookies to cross-site requests; they do not attach bearer tokens.
- `BodySizeLimit`: a request body larger than `max_body_bytes` is refused with 413 before
  it is parsed (by its Content-Length, or while it streams in).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tongban.web.problems import problem, wants_json

#: Pages: scripts and styles from this node only; inline scripts only with the nonce.
#: Images may be data: URIs (QR codes). Nothing may frame a page.
PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
#: JSON and files: nothing runs, nothing frames.
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"
#: The interactive API docs load Swagger UI from a CDN with an inline bootstrap script.
DOCS_PATHS = ("/api/docs",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_HEADER = "x-csrf-token"
SESSION_COOKIE = "tongban_session="


class SecurityHeaders:
    """Adds the defensive headers to every HTTP response; a fresh CSP nonce per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {k.lower() for k, _ in headers}
                content_type = Headers(raw=headers).get("content-type", "")

                def add(name: bytes, value: str) -> None:
                    if name not in present:
                        headers.append((name, value.encode("latin-1")))

                add(b"x-content-type-options", "nosniff")
                add(b"x-frame-options", "DENY")
                add(b"referrer-policy", "same-origin")
                if path.startswith(DOCS_PATHS):
                    add(b"content-security-policy", "frame-ancestors 'none'")
                elif content_type.startswith("text/html"):
                    add(b"content-security-policy", PAGE_CSP.format(nonce=nonce))
                else:
                    add(b"content-security-policy", DATA_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class CookieApiOriginCheck:
    """Refuses a cross-site, cookie-authenticated, state-changing API call with 403.

    Sits inside the session middleware (it reads the session's account and CSRF token).
    """

    def __init__(self, app: ASGIApp, public_url: str) -> None:
        self.app = app
        self.public_origin = _origin_of(public_url)

    def _allowed(self, scope: Scope, headers: Headers, session: dict[str, Any]) -> bool:
        own = {
            f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower(),
            self.public_origin,
        }
        origin = headers.get("origin")
        if origin is not None:
            return origin.lower() in own
        referer = headers.get("referer")
        if referer:
            return _origin_of(referer) in own
        sent = headers.get(CSRF_HEADER, "")
        expected = session.get("csrf")
        return bool(sent and isinstance(expected, str) and secrets.compare_digest(sent, expected))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method", "GET") in SAFE_METHODS
            or not scope.get("path", "").startswith("/api/")
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        session = scope.get("session") or {}
        bearer = headers.get("authorization", "").lower().startswith("bearer ")
        # The session cookie itself marks a browser request, whatever the session holds.
        cookie = SESSION_COOKIE in headers.get("cookie", "") or bool(session.get("account_id"))
        if bearer or not cookie or self._allowed(scope, headers, session):
            await self.app(scope, receive, send)
            return
        response = problem(
            403,
            "cross-origin-request",
            "无权操作",
            "请求来源无效：使用登录会话调用接口时须来自本站页面，或携带 X-CSRF-Token 请求头",
        )
        await response(scope, receive, send)


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"请求内容过大，不能超过 {limit // (1024 * 1024)} MB")


class BodySizeLimit:
    """Refuses request bodies over `limit` bytes with 413 problem+json (pages get the error
    page through the app's handler of HTTPException)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.limit
            except ValueError:
                too_large = False
            if too_large:
                await self._refuse(scope, receive, send)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            # Normally the app's HTTPException handler answers; this catches a body read
            # outside it (e.g. by a middleware).
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = str(BodyTooLarge(self.limit).detail)
        request = Request(scope)
        response: Response
        if wants_json(request):
            response = problem(413, "http-413", "上传内容过大", detail)
        else:
            response = request.app.state.templates.TemplateResponse(
                request,
                "error.html",
                {"title": "上传内容过大", "detail": detail, "status": 413},
                status_code=413,
            )
        response.headers["connection"] = "close"
        await response(scope, receive, send)
