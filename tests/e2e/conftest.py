"""End-to-end fixtures: the real `tongban` CLI and server in a subprocess on 127.0.0.1,
over a fresh SQLite database, and Debian's Chromium driven by Playwright.

The server runs with its embedded worker, which delivers outbox messages (forwarding a
case to the competent authority) every TONGBAN_WORKER_INTERVAL seconds.

Browser tests need Chromium (TONGBAN_CHROMIUM, default /usr/bin/chromium). Without it
they are skipped loudly, or fail when TONGBAN_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nodes import run_cli
from tongban.devserver import ServerFailed, free_port, running

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=zh-CN",
]
#: Residents' browsers run in Chinese: pages see zh-CN (each context's `locale`) and the
#: browser's own texts — a date field's 年/月/日, validation bubbles — are Chinese too.
#: On Linux Chromium takes its UI language from LANGUAGE, not --lang, and needs Debian's
#: chromium-l10n (zh-CN.pak; .ci/run installs it); without it they stay en-US.
BROWSER_LOCALE = "zh-CN"
BROWSER_ENV = {"LANGUAGE": "zh_CN:zh"}


@dataclass
class Node:
    """One throwaway tongban installation: its directory, database and environment."""

    root: Path
    database_url: str
    env: dict[str, str]

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run `python -m tongban ARGS` against this node, its exit code kept."""
        return run_cli(self.env, self.root, *args, stdin=stdin)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `python -m tongban ARGS` against this node; fails the test on a non-zero exit."""
        proc = self.run(*args)
        if proc.returncode != 0:
            pytest.fail(
                f"`tongban {' '.join(args)}` exited with {proc.returncode}\n"
                f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
            )
        return proc


def _tail(path: Path, n: int = 6000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


def _node_at(root: Path) -> Node:
    url = f"sqlite:///{root / 'tongban.db'}"
    env = {
        **os.environ,
        "TONGBAN_DATABASE_URL": url,
        "TONGBAN_UPLOAD_DIR": str(root / "uploads"),
        "TONGBAN_SECRET_KEY": "e2e-secret-key-not-for-production",
        "TONGBAN_WORKER_INTERVAL": "0.2",
        "TONGBAN_EMBEDDED_WORKER": "true",
        "PYTHONUNBUFFERED": "1",
    }
    return Node(root=root, database_url=url, env=env)


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One installation migrated and loaded with the demo federation via the CLI, once per
    test process: loading the demo (a year of dashboard, medical, licence, evidence and
    card activity) takes about a minute, which every module using `node` paid before."""
    root = tmp_path_factory.mktemp("demo-template")
    n = _node_at(root)
    n.cli("db", "upgrade")
    n.cli("demo")
    return root


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> Node:
    """A fresh installation of its own for the module: a copy of the demo template (its
    SQLite database and uploaded files), so no module sees another's changes."""
    root = tmp_path_factory.mktemp("node")
    # The database and its write-ahead log (the CLI's process left it unmerged); not the
    # shared-memory index, which SQLite rebuilds when it opens the copy.
    shutil.copytree(demo_template, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*-shm"))
    return _node_at(root)


@pytest.fixture(scope="module")
def live_server(node: Node) -> Iterator[str]:
    """`python -m tongban serve` on a free 127.0.0.1 port; yields its base URL."""
    port = free_port()
    argv = [sys.executable, "-m", "tongban", "serve", "--host", "127.0.0.1", "--port", str(port)]
    try:
        with running("server", argv, node.env, port, node.root) as base:
            yield base
    except ServerFailed as e:
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def http(live_server: str) -> Iterator[httpx.Client]:
    """An HTTP client on the live server (relative URLs)."""
    with httpx.Client(base_url=live_server, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def server_log(live_server: str, node: Node) -> Callable[[], str]:
    """The tail of the live server's log, for assertion messages."""
    logs = sorted(node.root.glob("server-*.log"))
    return lambda: _tail(logs[-1]) if logs else "(no log)"


@pytest.fixture(scope="module")
def demo_accounts(node: Node) -> list[dict[str, Any]]:
    """`python -m tongban demo accounts --json`, parsed."""
    out = node.cli("demo", "accounts", "--json").stdout
    rows = json.loads(out)
    assert isinstance(rows, list) and rows, out[:500]
    return rows


@pytest.fixture(scope="module")
def demo_password(demo_accounts: list[dict[str, Any]]) -> str:
    return str(next(a["password"] for a in demo_accounts if a["username"] == "wangfang"))


def chromium_path() -> str | None:
    configured = os.environ.get("TONGBAN_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def _no_browser(reason: str) -> None:
    if os.environ.get("TONGBAN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"TONGBAN_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(f"!!! BROWSER TESTS SKIPPED: {reason} !!!")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium through Playwright's sync API (one per test session)."""
    path = chromium_path()
    if path is None:
        _no_browser(
            f"Chromium not found (TONGBAN_CHROMIUM={os.environ.get('TONGBAN_CHROMIUM', '')!r}, "
            "default /usr/bin/chromium)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a dev dependency
        _no_browser("the playwright package is not installed")
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=path,
            args=CHROMIUM_ARGS,
            headless=True,
            env={**os.environ, **BROWSER_ENV},
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def new_page(browser: Any, live_server: str, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Pages in separate browser contexts (one per user: separate cookies). Every page
    opened is screenshotted into the test's tmp dir at the end."""
    contexts: list[Any] = []
    pages: list[Any] = []
    # A Content-Security-Policy that blocks a page's own script or style fails the test.
    csp_violations: list[str] = []

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            csp_violations.append(message.text)

    def make() -> Any:
        ctx = browser.new_context(base_url=live_server, locale=BROWSER_LOCALE)
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("console", on_console)
        pages.append(page)
        return page

    yield make
    for i, page in enumerate(pages):
        # A failed screenshot must never hide the test's real failure.
        with contextlib.suppress(Exception):
            page.screenshot(path=str(tmp_path / f"page-{i}.png"), full_page=True)
    for ctx in contexts:
        ctx.close()
    assert not csp_violations, "CSP blocked part of a page:\n" + "\n".join(csp_violations)


def log_in(page: Any, username: str, password: str) -> None:
    """Sign in on the login page; fails with the page's alert when it stays there."""
    page.goto("/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_load_state()
    assert "/login" not in page.url, page.locator("[role=alert]").all_inner_texts()


@pytest.fixture
def signed_in(new_page: Callable[[], Any], demo_password: str) -> Callable[[str], Any]:
    """`signed_in(username)`: a new page (its own cookies) signed in as a demo account."""

    def make(username: str) -> Any:
        page = new_page()
        log_in(page, username, demo_password)
        return page

    return make


@pytest.fixture
def no_error(server_log: Callable[[], str]) -> Callable[[Any], None]:
    """`no_error(page)`: fails with the page's error messages and the server log's tail
    when the page shows any."""

    def check(page: Any) -> None:
        # A click that submits a form returns once the next document is committed, not
        # loaded: read the page it leads to, not a half-parsed one.
        page.wait_for_load_state("load")
        alerts = page.locator(".alert.error, .field-error").all_inner_texts()
        assert not alerts, f"{alerts}\n--- server log\n{server_log()}"

    return check


# --- test data shared by the e2e tests ------------------------------------------------

#: A tiny but genuine PDF: the upload check sniffs the leading bytes.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)

#: Values tried, in order, for a string property with a `pattern`.
_PATTERN_CANDIDATES = (
    "320502199003071234",  # an ID-number shape (the form check is the schema's pattern)
    "6222021234567890",
    "2025-01",
    "苏E12345",
    "123456",
)


def sample_value(prop: dict[str, Any]) -> Any:
    """A value valid for one JSON Schema property of a matter's form."""
    import re
    from datetime import date

    if "const" in prop:
        return prop["const"]
    if prop.get("enum"):
        return prop["enum"][0]
    kind = prop.get("type", "string")
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        low = prop.get("minimum", 1)
        return int(low) if kind == "integer" else float(low)
    if kind == "array":
        return [sample_value(prop.get("items", {}))] * max(1, prop.get("minItems", 1))
    if kind == "object":
        return sample_form(prop)
    if prop.get("format") == "date":
        return date.today().isoformat()
    if "pattern" in prop:
        for candidate in _PATTERN_CANDIDATES:
            if re.search(prop["pattern"], candidate):
                return candidate
        raise AssertionError(f"no sample value for pattern {prop['pattern']!r}")
    text = "长三角一体化示范区青浦区测试路100号"
    return text[: prop.get("maxLength", len(text))].ljust(prop.get("minLength", 1), "号")


def sample_form(schema: dict[str, Any]) -> dict[str, Any]:
    """Values for every required field of a matter's form schema, checked against it."""
    import jsonschema

    props = schema.get("properties", {})
    data = {name: sample_value(props.get(name, {})) for name in schema.get("required", [])}
    jsonschema.Draft202012Validator(schema).validate(data)
    return data


@pytest.fixture(scope="session")
def form_for() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`form_for(schema)`: a valid form_data for a matter's form schema."""
    return sample_form


@pytest.fixture(scope="session")
def pdf_bytes() -> bytes:
    return PDF


@pytest.fixture(scope="module")
def login(
    live_server: str, demo_password: str, server_log: Callable[[], str]
) -> Callable[[str], dict[str, str]]:
    """`login(username)`: bearer headers for a demo account (over real HTTP)."""

    def headers(username: str) -> dict[str, str]:
        r = httpx.post(
            f"{live_server}/api/v1/auth/token",
            data={"username": username, "password": demo_password},
            timeout=30,
        )
        assert r.status_code == 200, f"{r.text}\n--- server log\n{server_log()}"
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    return headers
