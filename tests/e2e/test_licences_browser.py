"""The wallet in a real browser: 王芳 opens her 机动车驾驶证, chooses to show only her name
and licence class, sees the QR code and the text, and a verifier checks that text on the
verification page: valid, the chosen claims shown, the address not."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from axe import assert_accessible, horizontal_overflow

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
    assert_accessible(holder, "出示证照")
    # the QR as the verifier's camera would see it: a picture, large enough to read
    holder.set_viewport_size({"width": 1280, "height": 1400})
    holder.evaluate(
        "() => { const s = document.querySelector('.qr svg');"
        " s.setAttribute('width', '1000'); s.setAttribute('height', '1000');"
        " s.style.maxWidth = 'none'; }"
    )
    qr_png = holder.locator(".qr svg").screenshot()

    verifier = new_page()  # anyone, not logged in
    verifier.goto("/licences/verify")
    for width in (1280, 390):
        verifier.set_viewport_size({"width": width, "height": 900})
        assert_accessible(verifier, f"证照核验 at {width} px")
        assert horizontal_overflow(verifier) == 0
    # The camera path: the page's decoder (jsQR, served by the app) reads the QR picture,
    # and what it read goes where a camera frame's code goes: filled in and verified.
    assert verifier.get_by_role("button", name="开启摄像头扫码").is_visible()
    decoded = verifier.evaluate(
        """async (b64) => {
            const img = new Image(); img.src = 'data:image/png;base64,' + b64;
            await img.decode();
            const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
            const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
            const d = ctx.getImageData(0, 0, c.width, c.height);
            const hit = window.jsQR(d.data, d.width, d.height);
            return hit ? hit.data : null;
        }""",
        base64.b64encode(qr_png).decode(),
    )
    assert decoded == text
    verifier.evaluate("(t) => window.tongbanVerifyScan.found(t)", decoded)
    result = verifier.locator("#result")
    result.wait_for()
    assert result.locator("[data-valid=true]").count() == 1, result.inner_text()
    shown = result.locator("table.disclosed").inner_text()
    assert "王芳" in shown and "C1" in shown
    assert "长江西路" not in result.inner_text()  # the address stayed with the holder
    # plain Chinese: the licence type and the issuer by name, no address or code
    said = result.inner_text()
    assert "机动车驾驶证" in said and "签发方：" in said
    assert "http" not in said and "vct" not in said.lower()
    assert_accessible(verifier, "核验结果")
    verifier.screenshot(path=str(tmp_path / "verify.png"), full_page=True)

    # A short link to this platform opens here; another site's link is refused in words.
    scan = "(v) => window.tongbanVerifyScan.classify(v)"
    assert verifier.evaluate(scan, verifier.url.split("/licences")[0] + "/matters?x=1") == {
        "kind": "link",
        "href": "/matters?x=1",
    }
    carried = verifier.evaluate(
        scan, verifier.url.split("/licences")[0] + "/licences/verify?presentation=a.b.c~d~"
    )
    assert carried == {"kind": "presentation", "text": "a.b.c~d~"}
    foreign = verifier.evaluate(scan, "https://evil.example/licences/verify")
    assert foreign["kind"] == "foreign" and "其他网站" in foreign["text"]

    # a tampered text is refused with the reason
    verifier.goto("/licences/verify")
    verifier.get_by_label("证照文本").fill(text.replace("~", "~x", 1))
    verifier.get_by_role("button", name="核验").click()
    refused = verifier.locator("#result [data-valid=false]")
    assert refused.count() == 1
    assert "原因代码" not in verifier.locator("#result").inner_text()
    assert_accessible(verifier, "核验未通过")
