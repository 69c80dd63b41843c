"""The wallet in a real browser: 王芳 opens her 机动车驾驶证, chooses to show only her name
and licence class, sees the QR code and the text, and a verifier checks that text on the
verification page: valid, the chosen claims shown, the address not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser


def test_wallet_presentation_verified_on_the_verify_page(
    new_page: Callable[[], Any], signed_in: Callable[[str], Any], tmp_path: Path
) -> None:
    holder = signed_in("wangfang")
    holder.get_by_role("link", name="我的证照").click()
    holder.wait_for_url("**/my/licences")
    holder.get_by_role("link", name="机动车驾驶证").click()
    assert "C1" in holder.locator("table.kv").inner_text()
    holder.get_by_role("link", name="出示证照").click()
    holder.get_by_label("姓名").check()
    holder.get_by_label("准驾车型").check()
    assert not holder.get_by_label("住址").is_checked()
    holder.get_by_role("button", name="生成出示码").click()
    qr = holder.locator(".qr svg")
    qr.wait_for()
    box = qr.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100
    text = holder.locator("#presentation-text").input_value()
    assert text.count("~") == 3  # the issuer's JWT and exactly two disclosures
    assert "出示的信息：姓名、准驾车型" in holder.locator("#presentation").inner_text()
    holder.screenshot(path=str(tmp_path / "wallet-present.png"), full_page=True)

    verifier = new_page()  # anyone, not logged in
    verifier.goto("/licences/verify")
    verifier.get_by_label("证照文本").fill(text)
    verifier.get_by_role("button", name="核验").click()
    result = verifier.locator("#result")
    result.wait_for()
    assert result.locator("[data-valid=true]").count() == 1, result.inner_text()
    shown = result.locator("table.disclosed").inner_text()
    assert "王芳" in shown and "C1" in shown
    assert "长江西路" not in result.inner_text()  # the address stayed with the holder
    verifier.screenshot(path=str(tmp_path / "verify.png"), full_page=True)

    # a tampered text is refused with the reason
    verifier.goto("/licences/verify")
    verifier.get_by_label("证照文本").fill(text.replace("~", "~x", 1))
    verifier.get_by_role("button", name="核验").click()
    assert verifier.locator("#result [data-valid=false]").count() == 1
