"""The one form-error path of pages: FieldError, form_failure, field_messages."""

from __future__ import annotations

import json

import pytest

from tongban.errors import (
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    PermissionDenied,
    TooManyRequests,
    ValidationFailed,
)
from tongban.web.pages import field_messages, form_failure


class FakeSession:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def rollback(self) -> None:
        self.calls.append("rollback")

    def commit(self) -> None:
        self.calls.append("commit")


def test_field_error_is_a_plain_dict_with_attributes() -> None:
    err = FieldError("name", "必填")
    assert (err.field, err.message) == ("name", "必填")
    assert err == {"field": "name", "message": "必填"}
    assert json.loads(json.dumps(err)) == {"field": "name", "message": "必填"}


def test_domain_error_holds_field_errors_whatever_it_was_given() -> None:
    e = ValidationFailed("有误", errors=[{"field": "a", "message": "x"}, FieldError("b", "y")])
    assert all(isinstance(x, FieldError) for x in e.errors)
    assert [(x.field, x.message) for x in e.errors] == [("a", "x"), ("b", "y")]
    e.errors = [{"field": "c", "message": "z"}]
    assert isinstance(e.errors[0], FieldError)


@pytest.mark.parametrize(
    "error",
    [
        DomainError("有误"),
        DomainError("过大", status=413),
        NotFound("不存在"),
        PermissionDenied("无权"),
        Conflict("冲突"),
        ValidationFailed("校验"),
    ],
)
def test_the_status_is_the_errors_own_and_the_request_is_rolled_back(error: DomainError) -> None:
    session = FakeSession()
    failed = form_failure(session, error)  # type: ignore[arg-type]
    assert failed.status_code == error.status
    assert failed.message == error.detail
    assert failed.context == {"status_code": error.status, "message": error.detail, "errors": {}}
    assert session.calls == ["rollback"]


def test_keep_writes_commits_instead_and_retry_after_is_kept() -> None:
    session = FakeSession()
    failed = form_failure(session, TooManyRequests("稍后", retry_after=9), keep_writes=True)  # type: ignore[arg-type]
    assert session.calls == ["commit"]
    assert failed.status_code == 429
    assert failed.headers == {"Retry-After": "9"}


def test_field_messages_by_input_name() -> None:
    e = ValidationFailed(
        "申请表填写有误",
        errors=[
            {"field": "form_data.name", "message": "必填"},
            {"field": "materials.id_card", "message": "请上传身份证"},
            {"field": "password", "message": "过短"},
            {"field": "password", "message": "须含数字"},
            {"field": "password", "message": "过短"},
            {"field": "consent", "message": ""},
        ],
    )
    inputs = {"form_data.": "", "materials.": "material_"}
    assert field_messages(e, inputs) == {
        "name": "必填",
        "material_id_card": "请上传身份证",
        "password": "过短；须含数字",
        "consent": "申请表填写有误",
    }
    assert "form_data.name" in field_messages(e)
