"""Holder binding in a real browser: 王芳's browser makes a non-extractable device key
(WebCrypto, kept in IndexedDB), registers it, her licences are re-issued bound to it;
the verifier's page shows a challenge (核验码), her browser signs the presentation over
it, and the verifier — requiring binding — accepts it as 已核验持有人绑定, while the
same licence's copied, unsigned text is refused with its own reason.

Screenshots of the wallet and verify pages at 1280 and 390 px go to
TONGBAN_SHOTS_DIR (default: the test's tmp dir)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

WIDTHS = (1280, 390)


def shots(page: Any, directory: Path, name: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(directory / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def verify(verifier: Any, text: str, *, require_binding: bool) -> None:
    """Ask the verify page about `text`, holder binding required or not."""
    verifier.get_by_label("证照文本").fill(text)
    verifier.locator("#require-binding").set_checked(require_binding)
    verifier.get_by_role("button", name="核验").click()


def test_presentation_bound_in_the_browser_verifies_with_binding(
    new_page: Callable[[], Any], signed_in: Callable[[str], Any], tmp_path: Path
) -> None:
    out = Path(os.environ.get("TONGBAN_SHOTS_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    holder = signed_in("wangfang")

    # 1. the device key: made in the browser, registered, the licences re-issued with it
    holder.goto("/my/licences")
    holder.get_by_role("link", name="设备绑定").click()
    holder.wait_for_url("**/my/licences/device")
    create = holder.locator("#device-create")
    create.wait_for(state="visible")
    assert "还没有持有人密钥" in holder.locator("#device-status").inner_text()
    create.click()
    holder.wait_for_url("**/my/licences/device?done=registered")
    holder.locator("#device-binding[data-device-registered=true]").wait_for()
    assert "已登记" in holder.locator("#device-status").inner_text()
    rows = holder.locator("tr[data-key-thumbprint][data-active=true]")
    assert rows.count() == 1
    thumbprint = rows.first.get_attribute("data-key-thumbprint")
    bound = holder.locator(f"li[data-cnf-kid='{thumbprint}']")
    assert bound.count() >= 2, holder.locator(".licence-binding").inner_text()
    # the private key cannot be read back out of the browser
    extractable = holder.evaluate(
        """() => new Promise((resolve) => {
            const req = indexedDB.open("tongban-wallet", 1);
            req.onsuccess = () => {
              const get = req.result.transaction("keys").objectStore("keys").get("device");
              get.onsuccess = () => resolve([get.result.privateKey.extractable,
                                             get.result.privateKey.algorithm.namedCurve]);
            };
        })"""
    )
    assert extractable == [False, "P-256"]
    shots(holder, out, "wallet-device")

    # 2. the verifier opens the page and reads out its challenge
    verifier = new_page()
    verifier.goto("/licences/verify")
    nonce = verifier.locator("#verifier-nonce").inner_text().strip()
    assert len(nonce) == 8
    shots(verifier, out, "verify-empty")

    # 3. the holder chooses what to show, then signs it with the device over the nonce
    holder.goto("/my/licences")
    holder.get_by_role("link", name="机动车驾驶证").click()
    holder.get_by_role("link", name="出示证照").click()
    holder.get_by_label("姓名").check()
    holder.get_by_label("准驾车型").check()
    holder.get_by_role("button", name="生成出示码").click()
    holder.locator("#holder-binding").wait_for()
    copied = holder.locator("#presentation-text").input_value()  # unsigned: a bearer copy
    assert copied.endswith("~")
    shots(holder, out, "wallet-present-unsigned")
    holder.get_by_label("核验码（核验方提供）").fill(nonce.lower())  # typed in lower case
    holder.get_by_role("button", name="用本设备签名出示").click()
    holder.locator("[data-bound=true]").wait_for()
    signed = holder.locator("#presentation-text").input_value()
    assert signed.startswith(copied) and not signed.endswith("~")
    assert holder.locator(".qr svg").count() == 1
    assert nonce in holder.locator("#presentation").inner_text()
    shots(holder, out, "wallet-present-signed")

    # 4. the verifier requires binding: the signed text passes, and the page says so
    verify(verifier, signed, require_binding=True)
    result = verifier.locator("#result")
    result.wait_for()
    assert result.locator("[data-valid=true]").count() == 1, result.inner_text()
    assert result.locator("[data-binding=holder_bound]").count() == 1
    assert "已核验持有人绑定" in result.inner_text()
    shown = result.locator("table.disclosed").inner_text()
    assert "王芳" in shown and "C1" in shown
    shots(verifier, out, "verify-bound")

    # 5. the copied, unsigned text is refused by a verifier requiring binding ...
    verifier.goto("/licences/verify")
    verify(verifier, copied, require_binding=True)
    refused = verifier.locator("#result [data-valid=false]")
    refused.wait_for()
    assert refused.get_attribute("data-reason") == "key_binding_missing"
    assert "未附持有人绑定证明" in refused.inner_text()
    shots(verifier, out, "verify-refused")
    # ... and the signed one cannot be replayed against the next challenge
    verify(verifier, signed, require_binding=True)
    replay = verifier.locator("#result [data-valid=false]")
    replay.wait_for()
    assert replay.get_attribute("data-reason") == "key_binding_nonce_mismatch"

    # 6. where binding is not asked, the copy is valid but shown as a bearer presentation
    verify(verifier, copied, require_binding=False)
    verifier.locator("#result [data-valid=true]").wait_for()
    assert "未核验持有人绑定（不记名出示）" in verifier.locator("#result").inner_text()
    shots(verifier, out, "verify-bearer")
