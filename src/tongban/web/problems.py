"""RFC 9457 problem+json for the API; a Chinese error page (or a login redirect) for pages."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError
from sqlalchemy.orm.exc import StaleDataError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tongban.errors import ConcurrentChange, DomainError, NotAuthenticated
from tongban.types import MESSAGES as BOUNDED_TYPE_MESSAGES
from tongban.web.deps import AUTH_DEFERRED, authenticate_deferred

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


class ProblemFieldError(BaseModel):
    """One input that failed validation."""

    field: str = Field(description="出错的字段（以点分隔的路径）")
    message: str = Field(description="出错原因")


class Problem(BaseModel):
    """RFC 9457 problem details: the body of every 4xx (and 5xx) answer of the API."""

    type: str = Field(description="问题类型 URI，稳定的标识", examples=[TYPE_BASE + "not-found"])
    title: str = Field(description="问题类型的简短说明")
    status: int = Field(description="HTTP 状态码", ge=400, le=599)
    detail: str = Field(description="本次请求出错的具体说明")
    instance: str | None = Field(default=None, description="出错的请求（可省略）")
    errors: list[ProblemFieldError] | None = Field(
        default=None, description="逐字段的校验错误（仅在输入校验未通过时）"
    )


def responses(
    *statuses: int, content: dict[str, Any] | None = None
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a router or route: the 4xx it may answer beyond those `document`
    infers (auth, parameters, request body); each is documented as a problem+json Problem,
    or as `content` for a router that answers errors in a format of its own (Open311)."""
    return {
        status: {"description": _HTTP_TITLES.get(status, "请求失败")}
        | ({"content": content} if content else {})
        for status in statuses
    }


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
    errors: Sequence[Mapping[str, Any]] | None = None,
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
    response: Response = templates.TemplateResponse(
        request,
        "error.html",
        {"title": title, "detail": detail, "status": status},
        status_code=status,
    )
    return response


def install(app: FastAPI) -> None:
    install_openapi(app)

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
        if request.scope.get(AUTH_DEFERRED):
            # An endpoint authenticating in its one thread-pool trip (deps.AuthenticatedUnit):
            # the caller is checked before the body's errors are told, as CurrentUser did.
            try:
                await run_in_threadpool(authenticate_deferred, request)
            except DomainError as refused:
                return await domain_error(request, refused)
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

    @app.exception_handler(StaleDataError)
    async def stale_data(request: Request, exc: StaleDataError) -> Response:
        """A versioned row (kernel.history.Versioned) changed by another request since
        this one read it, found at a flush outside the kernel's guard: a 409, not a 500."""
        return await domain_error(request, ConcurrentChange())

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> Response:
        """PostgreSQL can neither store nor compare text holding NUL (U+0000), and refuses
        it before the query is sent: such input (a query parameter, a form or JSON field)
        is invalid, a 422 rather than a 500. Any other data error is unexpected."""
        if "NUL" not in str(exc.orig):
            return await unexpected(request, exc)
        detail = "输入中含有不允许的空字符（U+0000）"
        if wants_json(request):
            return problem(422, "invalid-character", "输入校验未通过", detail)
        return _page_error(request, 422, "输入校验未通过", detail)


# --- the OpenAPI document: every error answer documented as problem+json ----------------

#: Dependencies that identify the caller: a bad or missing token is a 401, a caller
#: without the right a 403 (`authenticated_unit` checks the caller inside its one
#: thread-pool trip: deps.AuthenticatedUnit).
_AUTH_DEPENDENCIES = ("optional_account", "current_account", "authenticated_unit")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_REF = "#/components/schemas/"


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """Every API route with its effective path and dependencies (those of the routers it
    was included through too)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before lazily included routers: app.routes is flat
        yield from (r for r in app.routes if isinstance(r, APIRoute))
        return
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def _inferred_statuses(route: Any, method: str, operation: dict[str, Any]) -> set[int]:
    """The 4xx any operation of this kind may answer, whatever its context."""
    statuses: set[int] = set()
    params = operation.get("parameters", [])
    has_body = "requestBody" in operation
    if params or has_body or method not in _SAFE_METHODS:
        statuses.add(422)  # RequestValidationError, or a service's ValidationFailed
    calls = list(_calls(route.dependant))
    if any(getattr(c, "__name__", "") in _AUTH_DEPENDENCIES for c in calls):
        statuses |= {401, 403}
    if any(isinstance(c, type) and issubclass(c, OAuth2PasswordRequestForm) for c in calls):
        statuses |= {401, 429}  # wrong credentials; too many attempts
    if params or has_body or method not in _SAFE_METHODS:
        statuses.add(404)  # what the path, the query or the body refers to does not exist
    if method not in _SAFE_METHODS:
        statuses |= {400, 409}  # a domain rule refused the change / the state moved on
    if has_body:
        statuses.add(413)  # web.security.BodySizeLimit
        if "multipart/form-data" in operation["requestBody"].get("content", {}):
            statuses.add(415)  # an upload of a type that is not accepted
    return statuses


#: Headers sent with some problems (see the handlers above).
_PROBLEM_HEADERS = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "几秒后可重试", "schema": {"type": "integer"}}},
}


def _problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description or _HTTP_TITLES.get(status, "请求失败"),
        "content": {PROBLEM: {"schema": {"$ref": _REF + "Problem"}}},
    }
    if status in _PROBLEM_HEADERS:
        answer["headers"] = _PROBLEM_HEADERS[status]
    return answer


def document(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite the generated document so that it matches what the handlers above send:
    every 4xx of every operation (declared with `responses()` or inferred) is an
    `application/problem+json` Problem, in place of FastAPI's `HTTPValidationError`."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template=_REF + "{model}")
    components.update(problem_schema.pop("$defs", {}))
    components["Problem"] = problem_schema
    for route in _api_routes(app):
        if not route.include_in_schema:
            continue
        item = schema.get("paths", {}).get(route.path_format, {})
        for method in route.methods:
            operation = item.get(method.lower())
            if operation is None:
                continue
            answers = operation.setdefault("responses", {})
            declared = {int(code) for code in answers if code.isdigit() and 400 <= int(code) < 500}
            for status in sorted(declared | _inferred_statuses(route, method, operation)):
                answer = answers.get(str(status), {})
                if status != 422 and "content" in answer:
                    continue  # declared with a format of its own (`responses(content=...)`)
                description = answer.get("description")
                if status == 422 or description in (None, "Validation Error"):
                    description = None
                answers[str(status)] = _problem_response(status, description)
            operation["responses"] = dict(sorted(answers.items()))
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app, generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
