"""The venue staff's scan page in a real Chromium whose camera is a video file: a senior
resident of 南京 (registered, identity checked at a 南京 window, card made) opens the
code page and goes offline; the code it shows is rendered as a QR into a Y4M video that
Chromium plays as its camera (--use-file-for-fake-video-capture); the 杭州 museum's
staff member (another browser) opens the scan page, starts the camera, and the page —
jsQR, as Chromium on Linux has no BarcodeDetector — reads the code and shows 通过 with
杭州's senior rule (同城待遇). The card is reported lost; the next code, typed into the
same page, is refused as revoked."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import segno
from stdnum.cn import ric

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 640, 480
#: As the session's browser (tests/e2e/conftest.py), plus a camera playing a file.
CAMERA_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


def write_y4m(text: str, path: Path) -> None:
    """One 640x480 grey frame (4:2:0, full range) with `text` as a QR in the middle;
    Chromium loops it as the camera's picture."""
    qr = segno.make(text, error="m")
    matrix = [list(row) for row in qr.matrix]
    size = len(matrix)
    scale = min(WIDTH, HEIGHT) * 7 // 8 // (size + 8)
    luma = bytearray(b"\xff" * (WIDTH * HEIGHT))
    left = (WIDTH - size * scale) // 2
    top = (HEIGHT - size * scale) // 2
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if not dark:
                continue
            for dy in range(scale):
                start = (top + y * scale + dy) * WIDTH + left + x * scale
                luma[start : start + scale] = b"\x00" * scale
    chroma = b"\x80" * (WIDTH * HEIGHT // 4)
    header = f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F5:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + b"FRAME\n" + bytes(luma) + chroma + chroma)


SENIOR, SENIOR_PASSWORD = "nanjing-senior", "senior-e2e-pass-2026"


def nanjing_senior(live_server: str, node: Any, demo_password: str) -> None:
    """A resident of 南京 born in 1950: registered, identity checked at a 南京 window, and
    a card made for them (the demo loader makes one for every proven resident)."""
    body = "32012119500307" + "521"
    id_number = body + ric.calc_check_digit(body + "0")
    with httpx.Client(base_url=live_server, timeout=30) as http:
        page = http.get("/register").text
        csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        r = http.post(
            "/register",
            data={
                "csrf_token": csrf,
                "role": "resident",
                "username": SENIOR,
                "password": SENIOR_PASSWORD,
                "display_name": "张建国",
                "city_code": "320100",
                "id_number": id_number,
            },
        )
        assert r.status_code == 303, r.text[-2000:]  # to the new account's home
    # The clerk's own client (the one above carries the new resident's session).
    with httpx.Client(base_url=live_server, timeout=30) as http:
        token = http.post(
            "/api/v1/auth/token", data={"username": "clerk-320100", "password": demo_password}
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        found = http.post(
            "/api/v1/identity/window-checks/search", json={"identifier": id_number}, headers=auth
        ).json()
        checked = http.post(
            "/api/v1/identity/window-checks",
            json={
                "account_id": found[0]["account_id"],
                "identifier": id_number,
                "method": "id_card_reader",
            },
            headers=auth,
        )
        assert checked.status_code == 200 and checked.json()["proven"], checked.text
    node.cli("demo")


def test_the_scan_page_reads_the_code_from_the_camera_and_shows_the_verdict(
    browser: Any,
    live_server: str,
    node: Any,
    new_page: Callable[[], Any],
    demo_password: str,
    tmp_path: Path,
) -> None:
    nanjing_senior(live_server, node, demo_password)

    def signed_in(username: str, password: str = SENIOR_PASSWORD) -> Any:
        page = new_page()
        page.goto("/login")
        page.get_by_label("用户名").fill(username)
        page.get_by_label("密码").fill(password)
        page.get_by_role("button", name="登录", exact=True).click()
        page.wait_for_load_state()
        assert "/login" not in page.url
        return page

    resident = signed_in(SENIOR)
    resident.goto("/my/card/code")
    resident.wait_for_selector("#card-qr[data-code]")
    # Installing the worker precaches the page's files (slow under a loaded suite); a page
    # is controlled by a worker that became active before it loaded: wait for the active
    # worker, then reload until the page is controlled.
    resident.wait_for_function(
        "() => navigator.serviceWorker.ready.then(() => true)", timeout=120_000
    )
    for _ in range(5):
        resident.reload()
        resident.wait_for_selector("#card-qr[data-code]")
        if resident.evaluate("() => !!navigator.serviceWorker.controller"):
            break
    assert resident.evaluate("() => !!navigator.serviceWorker.controller")
    resident.context.set_offline(True)
    resident.reload()
    resident.wait_for_selector("#card-qr[data-code]")
    code = resident.get_attribute("#card-qr", "data-code")
    assert code is not None and code.startswith("TBC1:")

    video = tmp_path / "camera.y4m"
    write_y4m(code, video)
    camera = browser.browser_type.launch(
        executable_path=os.environ.get("TONGBAN_CHROMIUM", "/usr/bin/chromium"),
        headless=True,
        args=[*CAMERA_ARGS, f"--use-file-for-fake-video-capture={video}"],
    )
    try:
        ctx = camera.new_context(base_url=live_server, locale="zh-CN", permissions=["camera"])
        ctx.set_default_timeout(20_000)
        staff = ctx.new_page()
        csp: list[str] = []
        staff.on(
            "console",
            lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None,
        )
        staff.goto("/login")
        staff.get_by_label("用户名").fill("venue-330100-museum")
        staff.get_by_label("密码").fill(demo_password)
        staff.get_by_role("button", name="登录", exact=True).click()
        staff.wait_for_load_state()
        staff.get_by_role("link", name="扫码核验").click()
        staff.wait_for_selector("#card-scan[data-ready]")
        assert "浙江省博物馆" in staff.inner_text("#scan-venue-name")
        staff.get_by_role("button", name="开启摄像头扫码").click()
        staff.wait_for_selector("#scan-verdict[data-admitted]")
        assert staff.get_attribute("#card-scan", "data-decoder") == "jsqr"
        assert staff.get_attribute("#scan-verdict", "data-admitted") == "true"
        assert staff.inner_text("#verdict-head") == "通过"
        assert staff.inner_text("#verdict-benefit") == "免费参观（老年人优先入馆）"
        assert "60周岁及以上老年人" in staff.inner_text("#verdict-why")
        assert "南京市" in staff.inner_text("#verdict-holder")
        staff.screenshot(path=str(tmp_path / "scan-admitted.png"))
        staff.get_by_role("button", name="关闭摄像头").click()

        # The holder reports the card lost from another browser (online) ...
        other = signed_in(SENIOR)
        other.goto("/my/card")
        other.locator('form[data-card-action="report_lost"] button').click()
        other.wait_for_url("**/my/card?done=report_lost")
        # ... the offline phone still makes codes; typed into the scan page, refused.
        resident.reload()
        resident.wait_for_selector("#card-qr[data-code]")
        later = resident.get_attribute("#card-qr", "data-code")
        assert later is not None and later != code
        staff.fill("#scan-code", later)
        staff.get_by_role("button", name="核验", exact=True).click()
        staff.wait_for_selector('#scan-verdict[data-admitted="false"]')
        assert staff.get_attribute("#scan-verdict", "data-reason") == "revoked"
        assert staff.inner_text("#verdict-head") == "未通过"
        assert "挂失" in staff.inner_text("#verdict-benefit")
        # At a phone's width the verdict is the first thing on screen, and nothing overflows.
        staff.set_viewport_size({"width": 390, "height": 844})
        assert staff.evaluate("document.documentElement.scrollWidth") <= 390
        staff.screenshot(path=str(tmp_path / "scan-refused-390.png"), full_page=True)
        assert not csp, csp
    finally:
        camera.close()
