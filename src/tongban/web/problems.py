"""RFC 9457 problem+json for the API; a Chinese error page (or a login redirect) for pages."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tongban.errors import DomainError, NotAuthenticated
from tongban.types import MESSAGES as BOUNDED_TYPE_MESSAGES

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
TYPE_BASE = "https://tongban.dev/problems/"

_HTTP_TITLES = {
    400: "请求有误",
    401: "未登录",
    403: "无权操作",
    404: "未找到",
    405: "不支持的请求方法",
    409: "状态冲突",
    413: "上传内容过大",
    415: "不支持的文件类型",
    422: "输入校验未通过",
    429: "请求过于频繁",
}

_PYDANTIC_MESSAGES = {
    "missing": "必填",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "enum": "不是允许的取值",
    "literal_error": "不是允许的取值",
    "uuid_parsing": "不是有效的标识",
    "json_invalid": "JSON 格式错误",
    "model_attributes_type": "格式错误",
    "dict_type": "应为对象",
    "bool_parsing": "应为布尔值",
    "string_type": "应为字符串",
    "value_error": "取值无效",
}
# Messages of the bounded input types (tongban.types) where the table above has none.
_PYDANTIC_MESSAGES = {**BOUNDED_TYPE_MESSAGES, **_PYDANTIC_MESSAGES}


def wants_json(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/open311/", "/.well-known/")):
        return True
    return "application/json" in request.headers.get("accept", "") and "text/html" not in (
        request.headers.get("accept", "")
    )


def problem(
    status: int,
    type_: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + type_,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "form", "header")]
    return ".".join(parts) or "body"


def _page_error(request: Request, status: int, title: str, detail: str) -> Response:
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "error.html",
        {"title": title, "detail": detail, "status": status},
        status_code=status,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        if wants_json(request):
            headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, NotAuthenticated) else None
            headers = getattr(exc, "headers", None) or headers  # e.g. Retry-After of a 429
            return problem(exc.status, exc.type, exc.title, exc.detail, exc.errors, headers)
        if isinstance(exc, NotAuthenticated) and request.method == "GET":
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return _page_error(request, exc.status, exc.title, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "field": _field(e.get("loc", ())),
                "message": _PYDANTIC_MESSAGES.get(e.get("type", ""), e.get("msg", "取值无效")),
            }
            for e in exc.errors()
        ]
        if wants_json(request):
            return problem(422, "validation-error", "输入校验未通过", "请求内容不符合要求", errors)
        text = "；".join(f"{e['field']}：{e['message']}" for e in errors)
        return _page_error(request, 422, "输入校验未通过", text)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title = _HTTP_TITLES.get(exc.status_code, "请求失败")
        detail = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else title
        if exc.status_code == 404:
            detail = "您访问的资源不存在"
        if wants_json(request):
            return problem(
                exc.status_code,
                f"http-{exc.status_code}",
                title,
                detail,
                headers=getattr(exc, "headers", None),
            )
        return _page_error(request, exc.status_code, title, detail)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        if wants_json(request):
            return problem(500, "internal-error", "服务器内部错误", "服务暂时不可用，请稍后重试")
        return _page_error(request, 500, "服务器内部错误", "服务暂时不可用，请稍后重试")
