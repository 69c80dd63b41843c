"""Every page a resident, a clerk, an officer, a supervisor and an admin open most, in a
real browser at 1280, 390 and 360 px: axe-core finds no serious or critical violation,
and no page scrolls sideways (long identifiers wrap, wide tables scroll in their box).
On phones the navigation folds into a 菜单 button that opens without JavaScript."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from axe import assert_accessible, axe_available, horizontal_overflow

pytestmark = pytest.mark.browser

PUBLIC = ["/", "/matters", "/matters?q=社保", "/login", "/register", "/licences/verify"]
#: A few of each role's own pages (the role's workspace first).
SIGNED_IN: dict[str, list[str]] = {
    "wangfang": ["/my/cases", "/my/licences", "/my/data-use", "/matters"],
    "admin": ["/admin/accounts", "/audit"],
    "supervisor-310000": ["/audit?kind=message.sent", "/matters/YRD-GA-0006?city=320500"],
}
WIDTHS = (1280, 390, 360)


def _check(page: Any, path: str) -> list[str]:
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(path)
        page.wait_for_load_state()
        over = horizontal_overflow(page)
        if over > 0:
            problems.append(f"{path} at {width} px scrolls sideways by {over} px")
        if width != 360:
            try:
                assert_accessible(page, f"{path} at {width} px")
            except AssertionError as e:
                problems.append(str(e))
    return problems


def test_public_pages_pass_axe_and_fit_a_phone(new_page: Callable[[], Any]) -> None:
    if not axe_available():
        assert_accessible(new_page())  # skips loudly, or fails in CI
    page = new_page()
    problems = [p for path in PUBLIC for p in _check(page, path)]
    assert not problems, "\n".join(problems)


def test_phone_navigation_folds_into_a_menu_button(signed_in: Callable[[str], Any]) -> None:
    page = signed_in("wangfang")
    nav = page.get_by_role("navigation", name="主导航")
    page.set_viewport_size({"width": 1280, "height": 800})
    assert nav.get_by_role("link", name="我的证照").is_visible()
    assert not page.locator("summary", has_text="菜单").is_visible()
    page.set_viewport_size({"width": 360, "height": 800})
    assert not nav.get_by_role("link", name="我的证照").is_visible()
    page.locator("summary", has_text="菜单").click()
    nav.get_by_role("link", name="我的证照").click()
    page.wait_for_url("**/my/licences")
    assert horizontal_overflow(page) == 0


@pytest.mark.parametrize("username", sorted(SIGNED_IN))
def test_signed_in_pages_pass_axe_and_fit_a_phone(
    signed_in: Callable[[str], Any], username: str
) -> None:
    page = signed_in(username)
    problems = [p for path in SIGNED_IN[username] for p in _check(page, path)]
    assert not problems, "\n".join(problems)


#: One demo account of each staff role, and where it should land after signing in.
LANDING = {
    "admin": "/admin/accounts",
    "supervisor-310000": "/workbench",
    "clerk-310000": "/window",
    "310000-civil_affairs-reviewer": "/workbench",
    "dispatcher-310000": "/tickets",
    "hotline-310000": "/tickets",
    "grid-310118": "/tickets",
    "hospital-H310000001": "/medical/counter",
    "venue-310000-library": "/venue/scan",
    "yrd-tech": "/my/cases",
}


@pytest.mark.parametrize("username", sorted(LANDING))
def test_each_role_lands_on_its_workspace_and_may_open_every_link_it_is_shown(
    signed_in: Callable[[str], Any], live_server: str, username: str
) -> None:
    page = signed_in(username)
    assert page.url == live_server + LANDING[username]
    assert page.locator("h1").count() >= 1
    hrefs = (
        page.get_by_role("navigation", name="主导航")
        .locator("a")
        .evaluate_all("links => links.map(a => a.getAttribute('href'))")
    )
    refused = []
    for href in hrefs:
        r = page.request.get(href, max_redirects=0)
        if r.status != 200:
            refused.append(f"{href}: {r.status}")
    assert not refused, f"{username} is shown links it may not use: {refused}"
