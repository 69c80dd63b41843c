"""The password policy and the sign-in delays (issue 10 items 6 and 9): pure rules."""

from __future__ import annotations

import pytest

from tongban.identity.policy import common_passwords, login_delay, password_problems


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("12345678", "过于常见"),
        ("password", "过于常见"),
        ("Password1", "过于常见"),
        ("qwertyuiop", "过于常见"),
        ("woaini1314", "过于常见"),
        ("        ", "全部是空格"),
        ("\t\t\t\t\t\t\t\t", "全部是空格"),
        ("abc1    ", "至少 8 位"),
        ("  ab12  ", "至少 8 位"),
        ("short1!", "至少 8 位"),
        ("aaaaaaaaaaaa", "同一个字符"),
        ("AaAaAaAaAa", "同一个字符"),
        ("abcdefghij", "两类字符"),
        ("zhongguorenmin", "两类字符"),
        ("73829104657", "两类字符"),
        ("!@#$%^&*()_+", "两类字符"),
        ("x" * 129 + "1", "不能超过"),
    ],
)
def test_weak_passwords_are_refused_with_a_chinese_reason(password, message):
    problems = password_problems(password)
    assert problems, password
    assert any(message in p for p in problems), problems


def test_the_username_and_the_id_number_are_refused():
    assert any("用户名" in p for p in password_problems("Zhou.Min88", username="zhou.min88"))
    ident = "11010519491231002X"
    problems = password_problems(f"pw-{ident.lower()}", identifiers=(ident,))
    assert any("证件号码" in p for p in problems)


@pytest.mark.parametrize(
    "password",
    ["correct-horse-battery", "tongban-demo-2026", "long-enough-pw", "我的密码是绿色的-2026"],
)
def test_reasonable_passwords_pass(password):
    assert (
        password_problems(password, username="someone", identifiers=("330102199001011234",)) == []
    )


def test_the_common_list_is_the_top_ten_thousand_and_more():
    words = common_passwords()
    assert len(words) >= 10_000
    assert {"123456", "password", "iloveyou", "88888888"} <= words


def test_login_delay_grows_past_the_free_failures_and_is_capped():
    delays = [login_delay(n, free=5, base_seconds=2, max_seconds=60) for n in range(1, 12)]
    assert delays[:5] == [0, 0, 0, 0, 0]
    assert delays[5:] == [2, 4, 8, 16, 32, 60]
    assert login_delay(10_000, free=5, base_seconds=2, max_seconds=60) == 60


def test_the_demo_password_meets_the_policy():
    from tongban.demo import DEMO_PASSWORD

    assert password_problems(DEMO_PASSWORD, username="wangfang") == []
