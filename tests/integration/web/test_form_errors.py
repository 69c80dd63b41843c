"""One form-error path (issue 11): a refused form is answered with the error's own
status on a page exactly as in the API, whatever the context."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import Request
from fastapi.responses import Response
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tongban.errors import (
    Conflict,
    DomainError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TooManyRequests,
    ValidationFailed,
)
from tongban.web.deps import SessionDep
from tongban.web.pages import render_form_error

from builders import (
    SIMPLE_FORM,
    SIMPLE_MATTER,
    TINY_PDF,
    apply_form,
    csrf_of,
    make_resident,
    sign_in,
    token_for,
)

ERRORS: list[DomainError] = [
    DomainError("请求有误"),
    DomainError("自带状态", status=413),
    NotFound("记录不存在"),
    PermissionDenied("无权操作"),
    NotAuthenticated("请先登录"),
    Conflict("状态已变化"),
    ValidationFailed("填写有误", errors=[{"field": "name", "message": "必填"}]),
    TooManyRequests("请稍后再试", retry_after=30),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: f"{type(e).__name__}-{e.status}")
def test_the_same_error_has_the_same_status_on_a_page_and_in_the_api(
    app: Any, client: TestClient, error: DomainError
) -> None:
    def api_probe() -> None:
        raise error

    def page_probe(request: Request, session: SessionDep) -> Response:
        return render_form_error(
            request, session, "error.html", None, error, title="表单", detail=error.detail
        )

    app.add_api_route("/api/v1/_probe", api_probe, methods=["POST"])
    app.add_api_route("/_probe", page_probe, methods=["POST"])

    api = client.post("/api/v1/_probe")
    page = client.post("/_probe", headers={"accept": "text/html"})
    assert api.status_code == page.status_code == error.status
    assert api.json()["status"] == error.status
    assert api.headers.get("retry-after") == page.headers.get("retry-after")
    assert error.detail in page.text


def _login(client: TestClient, username: str) -> str:
    """Sign in through the page; the CSRF token of the application form."""
    sign_in(client, username)
    return csrf_of(client.get(f"/apply/{SIMPLE_MATTER}").text)


def test_an_application_for_an_unknown_jurisdiction_is_refused_alike_on_page_and_api(
    client: TestClient, session: Session
) -> None:
    """Before, the page mapped a NotFound to 400 while the API answered 404."""
    resident = make_resident(session)
    headers = token_for(client, resident)
    upload = client.post(
        "/api/v1/attachments",
        headers=headers,
        data={"material_code": "id_card"},
        files={"file": ("id.pdf", TINY_PDF, "application/pdf")},
    )
    body = {
        "matter_code": SIMPLE_MATTER,
        "competent_jurisdiction": "999999",
        "form_data": dict(SIMPLE_FORM),
        "consent": True,
        "attachment_ids": [upload.json()["id"]],
    }
    api = client.post("/api/v1/cases", json=body, headers=headers)
    assert api.status_code == 404, api.text  # an unknown jurisdiction: NotFound

    csrf = _login(client, resident.username)
    page = client.post(
        f"/apply/{SIMPLE_MATTER}",
        data=apply_form(csrf, SIMPLE_FORM, competent_jurisdiction="999999", competent_city=None),
        files={"material_id_card": ("id.pdf", TINY_PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert page.status_code == api.status_code, (api.text, page.text[:500])
    assert api.json()["detail"] in page.text


def test_field_messages_are_tied_to_their_inputs_by_the_shared_macro(client: TestClient) -> None:
    """Registration (identity) and the application form (cases) show a refused input's
    message the same way: under the input, named by aria-describedby."""
    page = client.get("/register")
    r = client.post(
        "/register",
        data={
            "csrf_token": csrf_of(page.text),
            "role": "resident",
            "username": "weak_password_user",
            "password": "123",
            "display_name": "张三",
            "city_code": "320500",
        },
    )
    assert r.status_code == 422, r.text[:500]
    assert 'aria-describedby="password-error"' in r.text
    assert re.search(r'<p class="field-error" id="password-error">[^<]+</p>', r.text)
    assert '<div class="alert error" role="alert">' in r.text
