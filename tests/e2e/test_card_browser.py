"""The dynamic code in a real browser against a real server process: the resident's code
page makes its key with WebCrypto, keeps working with the browser offline (its service
worker serves the page, the page signs new codes itself), a 杭州 museum gate synced with
the node admits the code with its rule, and once the card is reported lost (from
another browser context) and the gate syncs again, the same holder is refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tongban.card import gate as gates
from tongban.card.verifier import Refusal

pytestmark = pytest.mark.browser


def _gate(live_server: str, tmp_path: Path, password: str) -> Path:
    state = tmp_path / "gate"
    config = gates.init(state, "e2e-hz-museum", "330100-museum", live_server)
    with httpx.Client(base_url=live_server, timeout=30) as http:
        token = http.post(
            "/api/v1/auth/token", data={"username": "admin", "password": password}
        ).json()["access_token"]
        r = http.post(
            "/api/v1/card/gates",
            json={
                "gate_id": config.gate_id,
                "venue_code": config.venue_code,
                "public_jwk": config.public_jwk(),
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
    return state


#: The worker's state as the page sees it, for the assertion message.
_WORKER_STATE = """async () => {
  const r = await navigator.serviceWorker.getRegistration("/my/card/");
  if (!r) { return "no registration"; }
  const w = (x) => (x ? x.state : "-");
  return `installing ${w(r.installing)}, waiting ${w(r.waiting)}, active ${w(r.active)}`;
}"""


def _controlled(page: Any, server_log: Callable[[], str]) -> None:
    """Reload until the code page's service worker controls it. Installing precaches the
    page's files, which under a loaded suite can take long; an install that failed (one
    precache fetch failing drops it) is retried by the page's next registration, as a
    resident's next visit would. Three loads, 40 s each, then fail with what was seen."""
    seen = []
    for _ in range(3):
        page.reload()
        try:
            page.wait_for_function(
                "() => !!(navigator.serviceWorker && navigator.serviceWorker.controller)",
                timeout=40_000,
            )
            return
        except PlaywrightTimeout:
            seen.append(page.evaluate(_WORKER_STATE))
    raise AssertionError(f"no service worker controls the page: {seen}\n{server_log()}")


def test_the_code_page_works_offline_and_a_lost_card_is_refused_after_sync(
    live_server: str,
    signed_in: Callable[[str], Any],
    demo_password: str,
    server_log: Callable[[], str],
    tmp_path: Path,
) -> None:
    page = signed_in("lina")
    page.goto("/my/card")
    page.get_by_role("link", name="出示电子社保卡（一码通行）").click()
    page.wait_for_selector("#card-qr[data-code]")
    first = page.get_attribute("#card-qr", "data-code")
    assert first is not None and first.startswith("TBC1:") and len(first) == 307
    # Once its service worker controls the page, the page loads and signs offline.
    _controlled(page, server_log)
    page.context.set_offline(True)
    page.reload()
    page.wait_for_selector("#card-qr[data-code]")
    offline = page.get_attribute("#card-qr", "data-code")
    assert offline is not None and offline != first
    assert "秒后自动刷新" in page.inner_text("#card-code")

    state = _gate(live_server, tmp_path, demo_password)
    report = gates.sync(state)
    assert report.failures == [], report.failures
    gate = gates.load(state)
    verdict = gate.check(offline, int(time.time()))
    assert verdict.admitted, verdict
    assert verdict.decision is not None and verdict.message == "通过：免费参观"
    assert verdict.holder is not None and verdict.holder.city == "320500"
    gate.close()

    # The holder reports the card lost from another browser (online).
    other = signed_in("lina")
    other.goto("/my/card")
    other.locator('form[data-card-action="report_lost"] button').click()
    other.wait_for_url("**/my/card?done=report_lost")
    assert "已挂失" in other.inner_text("main")

    gates.sync(state)
    gate = gates.load(state)
    refused = gate.check(offline, int(time.time()))
    assert refused.reason is Refusal.REVOKED, refused
    gate.close()

    # Back online, the code page learns the card is lost and shows no code.
    page.context.set_offline(False)
    page.reload()
    page.wait_for_selector("#card-code .alert.error")
    assert "挂失" in page.inner_text("#card-code")
    assert page.locator("#card-qr").count() == 0
    # Found again, for the other tests of this module's server.
    other.goto("/my/card")
    other.locator('form[data-card-action="found"] button').click()
    other.wait_for_url("**/my/card?done=found")
