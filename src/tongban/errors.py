"""Typed failures shared by every context, rendered as RFC 9457 problem+json by the web layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class FieldError(dict[str, str]):
    """One input that is wrong: the field's name (a dotted path for nested input, e.g.
    `form_data.name`) and a Chinese message. A dict `{"field", "message"}`, so it goes
    into problem+json as it is; pages show `message` next to the input named `field`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field=field, message=message)

    @classmethod
    def of(cls, error: Mapping[str, Any]) -> FieldError:
        """A FieldError from a plain `{"field": ..., "message": ...}` mapping."""
        if isinstance(error, FieldError):
            return error
        return cls(str(error.get("field") or ""), str(error.get("message") or ""))

    @property
    def field(self) -> str:
        return self["field"]

    @property
    def message(self) -> str:
        return self["message"]


class DomainError(Exception):
    """A failure a user can act on. `type` is a stable slug; `detail` is in Chinese."""

    status: int = 400
    type: str = "bad-request"
    title: str = "请求有误"

    def __init__(
        self,
        detail: str,
        *,
        type: str | None = None,
        status: int | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if type:
            self.type = type
        if status:
            self.status = status
        self.errors = errors or []

    @property
    def errors(self) -> list[FieldError]:
        """What is wrong with each input, if the error is about inputs."""
        return self._errors

    @errors.setter
    def errors(self, value: Sequence[Mapping[str, Any]]) -> None:
        self._errors = [FieldError.of(e) for e in value]


class NotFound(DomainError):
    status = 404
    type = "not-found"
    title = "未找到"


class PermissionDenied(DomainError):
    status = 403
    type = "forbidden"
    title = "无权操作"


class NotAuthenticated(DomainError):
    status = 401
    type = "unauthenticated"
    title = "未登录"


class Conflict(DomainError):
    status = 409
    type = "conflict"
    title = "状态冲突"


class ValidationFailed(DomainError):
    status = 422
    type = "validation-error"
    title = "输入校验未通过"


class TooManyRequests(DomainError):
    """Too many attempts: wait `retry_after` seconds (sent as Retry-After)."""

    status = 429
    type = "too-many-requests"
    title = "请求过于频繁"

    def __init__(self, detail: str, *, retry_after: int, type: str | None = None) -> None:
        super().__init__(detail, type=type)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class ConcurrentChange(Conflict):
    """Another request changed the record between reading and writing it (a stale
    version, a duplicate event number): the user refreshes and tries again."""

    type = "concurrent-change"
    title = "记录已被修改"

    def __init__(self, detail: str = "该记录已被他人修改，请刷新后重试") -> None:
        super().__init__(detail)
