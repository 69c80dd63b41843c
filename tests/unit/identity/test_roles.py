"""The rules of a change of role that need no database: which roles an administrator may
give, what post each needs, what reason will do."""

from __future__ import annotations

import pytest

from tongban.identity.domain import (
    APPLICANT_ROLES,
    ASSIGNABLE_ROLES,
    POST_OF_ROLE,
    ROLE_REASON_MAX,
    Post,
    Role,
    assignable_role,
    role_reason_problem,
)


def test_every_staff_role_is_assignable_and_has_a_post() -> None:
    assert set(ASSIGNABLE_ROLES) == set(Role) - APPLICANT_ROLES
    assert set(POST_OF_ROLE) == set(ASSIGNABLE_ROLES)
    assert POST_OF_ROLE[Role.OFFICER] is Post.AUTHORITY
    assert POST_OF_ROLE[Role.SUPERVISOR] is Post.JURISDICTION
    assert POST_OF_ROLE[Role.ADMIN] is Post.NONE
    assert {r for r, p in POST_OF_ROLE.items() if p is Post.CITY} == {
        Role.CLERK,
        Role.HOSPITAL,
        Role.HOTLINE,
        Role.GRID,
        Role.DISPATCHER,
        Role.VENUE,  # a venue's staff scan for the venues of their city
    }


@pytest.mark.parametrize("value", ["officer", " clerk ", "grid_inspector", "admin"])
def test_a_staff_role_is_accepted(value: str) -> None:
    assert assignable_role(value) == Role(value.strip())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("resident", "只能授予工作人员角色"),
        ("enterprise", "只能授予工作人员角色"),
        ("wizard", "不是有效的角色"),
        ("", "不是有效的角色"),
    ],
)
def test_an_applicant_or_unknown_role_is_refused_in_chinese(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        assignable_role(value)


def test_a_reason_is_required_and_bounded() -> None:
    assert role_reason_problem("调岗") is None
    assert role_reason_problem("   ") == "请填写变更原因"
    assert role_reason_problem("长" * ROLE_REASON_MAX) is None
    assert (
        role_reason_problem("长" * (ROLE_REASON_MAX + 1))
        == f"变更原因不能超过 {ROLE_REASON_MAX} 字"
    )
