"""axe-core in the browser tests: inject the npm-installed `axe.min.js` into a page and
fail on any serious or critical violation.

axe-core comes from the npm registry (package.json / package-lock.json at the repo root;
`make install` runs `npm ci` when npm is present). Without it the check is skipped loudly,
or fails when TONGBAN_REQUIRE_BROWSER=1 (CI).

The source is evaluated through the DevTools protocol (`page.evaluate`), which the page's
Content-Security-Policy does not govern: the pages keep their nonce-only policy, and the
fixture that records CSP violations still sees any the page itself causes.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

AXE_JS = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"

#: The impacts that fail a test.
FAILING = ("serious", "critical")


@cache
def _source() -> str | None:
    return AXE_JS.read_text(encoding="utf-8") if AXE_JS.exists() else None


def axe_available() -> bool:
    return _source() is not None


def _missing() -> None:
    reason = f"axe-core not installed ({AXE_JS} missing; run `npm ci`)"
    if os.environ.get("TONGBAN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"TONGBAN_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(f"!!! AXE CHECK SKIPPED: {reason} !!!")


def violations(page: Any) -> list[dict[str, Any]]:
    """axe's serious and critical violations on the page as it stands now."""
    source = _source()
    if source is None:
        _missing()
        return []
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(source + "\n;undefined")
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const r = await window.axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => ({target: n.target.join(' '),
                                                     summary: n.failureSummary}))}));
        }"""
    )
    return [v for v in found if v["impact"] in FAILING]


def format_violations(found: list[dict[str, Any]]) -> str:
    lines = []
    for v in found:
        lines.append(f"- [{v['impact']}] {v['id']}: {v['help']}")
        for n in v["nodes"]:
            lines.append(f"    {n['target']}: {(n['summary'] or '').splitlines()[-1:]}")
    return "\n".join(lines)


def assert_accessible(page: Any, where: str = "") -> None:
    """Fails with axe's findings when the page has a serious or critical violation."""
    found = violations(page)
    assert not found, f"axe-core on {where or page.url}:\n{format_violations(found)}"


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the page scrolls sideways (0 when it fits the viewport)."""
    page.wait_for_load_state("load")  # not a document still being replaced
    return int(
        page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
    )


def artefacts_dir() -> Path:
    """Where browser tests keep what CI saves as artefacts (screenshots): TONGBAN_ARTEFACTS,
    or var/artefacts/ at the repository root."""
    configured = os.environ.get("TONGBAN_ARTEFACTS")
    return (
        Path(configured)
        if configured
        else Path(__file__).resolve().parents[1] / "var" / "artefacts"
    )
