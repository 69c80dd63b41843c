"""Tongban as real processes, for the end-to-end tests: the CLI in a subprocess, and a
federation of `tongban serve --node …` processes on 127.0.0.1 made by
`tongban exchange init-local`, with what the tests do to a node from outside (sign in
over HTTP, submit a case, read its database, sign as it).

The server subprocesses themselves are tongban.devserver's (shared with the benchmarks);
this module adds what only the tests need: a node's directory, environment and database,
and pytest failures that carry the server's log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from tongban.config import Settings
from tongban.contexts import build_node
from tongban.demo import DEMO_PASSWORD
from tongban.devserver import ServerFailed, ServerProcess, free_port_block, pg_database

from builders import SIMPLE_FORM, SIMPLE_MATTER, TINY_PDF

#: Seconds allowed for one CLI command (`init-local` migrates and loads several nodes).
CLI_TIMEOUT = 180.0
INIT_TIMEOUT = 300.0

#: jurisdiction -> (a resident of it in the demo data, the city whose authority decides
#: a city-level matter of that jurisdiction)
PEOPLE = {
    "310000": ("zhangwei", "310000"),
    "320000": ("lina", "320500"),
    "330000": ("chenjie", "330100"),
    "340000": ("wangfang", "340100"),
}

#: Retries of the outbox fast enough for a test to see a restarted peer catch up.
FAST_RETRIES = {"TONGBAN_EXCHANGE_BACKOFF": "0.3,0.6,1", "TONGBAN_EXCHANGE_MAX_ATTEMPTS": "1000"}

#: A PostgreSQL server whose user may create databases (the PostgreSQL tier runs with it).
PG_URL = os.environ.get("TONGBAN_TEST_PG_URL")

T = TypeVar("T")


def run_cli(
    env: dict[str, str],
    cwd: Path,
    *args: str,
    timeout: float = CLI_TIMEOUT,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m tongban ARGS` with its exit code and output kept (nothing is checked)."""
    return subprocess.run(
        [sys.executable, "-m", "tongban", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )


def wait_until(
    what: str,
    probe: Callable[[], T],
    timeout: float,
    detail: Callable[[], str] = lambda: "",
) -> T:
    """The first truthy answer of `probe`, asked every 0.3 s; fails the test with
    `detail()` (a log's tail, what is still pending) when `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"{what} not seen within {timeout} s\n{detail()}")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as `init-local` writes a node's `.env`."""
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        out[key] = value
    return out


@dataclass
class PeerNode:
    """One node of a local federation: its directory, environment (from its `.env`) and
    `tongban serve --node` process."""

    directory: Path
    env: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    server: ServerProcess = field(init=False)

    def __post_init__(self) -> None:
        argv = [sys.executable, "-m", "tongban", "serve", "--node", self.node_id]
        self.server = ServerProcess(
            self.node_id, argv, self.env, self.url, self.directory / "server.log"
        )

    @property
    def node_id(self) -> str:
        return self.env["TONGBAN_NODE_ID"]

    @property
    def jurisdiction(self) -> str:
        """The first jurisdiction it serves (the one its id is named after)."""
        return self.node_id.removeprefix("node-")

    @property
    def url(self) -> str:
        return self.env["TONGBAN_PUBLIC_URL"]

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.server.proc

    def start(self) -> None:
        self.server.start()

    def wait_ready(self, timeout: float | None = None) -> None:
        try:
            self.server.wait_ready() if timeout is None else self.server.wait_ready(timeout)
        except ServerFailed as e:
            pytest.fail(str(e))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.server.stop(sig)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The CLI against this node's database (exit code kept, not checked)."""
        return run_cli(self.env, self.directory, *args)

    def sql(self, query: str, **params: Any) -> list[Any]:
        """Run one statement on the node's database in its own transaction; its rows."""
        engine = create_engine(self.env["TONGBAN_DATABASE_URL"])
        try:
            with engine.begin() as c:
                result = c.execute(text(query), params)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()

    def key(self) -> Any:
        """This node's own message-signing key, read from its database."""
        from tongban.exchange import service as exchange

        url = self.env["TONGBAN_DATABASE_URL"]
        engine = create_engine(url)
        try:
            # A session of this node: it carries the node's settings (kernel.node.settings_of).
            node = build_node(
                Settings(database_url=url, node_id=self.node_id), sessionmaker(engine)
            )
            with node.session_factory() as s:
                return exchange.node_key(s, self.node_id)
        finally:
            engine.dispose()

    def token(self, http: httpx.Client, username: str) -> dict[str, str]:
        """Bearer headers for a demo account of this node (signed in once, then reused)."""
        if username not in self.tokens:
            r = http.post(
                f"{self.url}/api/v1/auth/token",
                data={"username": username, "password": DEMO_PASSWORD},
            )
            assert r.status_code == 200, r.text
            self.tokens[username] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[username]}"}


@contextmanager
def node_databases(backend: str, count: int, tag: str) -> Iterator[list[str] | None]:
    """The databases of `count` nodes, as `init_local(..., database_urls=...)` takes them:
    None for "sqlite" (each node its own file); for "postgresql" a new database each on
    TONGBAN_TEST_PG_URL's server (named after `tag`), dropped when the block ends. The
    test is skipped when that server is not set."""
    if backend == "sqlite":
        yield None
        return
    if not PG_URL:
        pytest.skip("PostgreSQL tier skipped: TONGBAN_TEST_PG_URL is not set")
    with ExitStack() as stack:
        yield [stack.enter_context(pg_database(PG_URL, tag)) for _ in range(count)]


@contextmanager
def serving(
    root: Path,
    env: dict[str, str] | None = None,
    *,
    own_ports: bool = False,
    ready_timeout: float | None = None,
) -> Iterator[dict[str, PeerNode]]:
    """The nodes `init-local` made in `root`, each served by its own process with the
    embedded worker; yields them by jurisdiction once all answer /healthz (within
    `ready_timeout` seconds each, if given), and stops them however the block ends. `env`
    is added to every node's environment. With `own_ports`, each node listens on the port
    of its own public URL even where the federation file names another for it (a
    forwarder in front of it)."""
    nodes: dict[str, PeerNode] = {}
    for directory in sorted(root.glob("node-*")):
        node_env = {
            **os.environ,
            **read_env_file(directory / ".env"),
            "TONGBAN_WORKER_INTERVAL": "0.2",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        node = PeerNode(directory, node_env)
        if own_ports:
            node.server.argv += ["--port", node.url.rsplit(":", 1)[1]]
        nodes[node.jurisdiction] = node
    try:
        for node in nodes.values():
            node.start()
        for node in nodes.values():
            node.wait_ready(ready_timeout)
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()


@contextmanager
def federation(
    root: Path,
    count: int,
    *,
    port_start: int,
    port_step: int,
    env: dict[str, str] | None = None,
    demo: bool = True,
) -> Iterator[dict[str, PeerNode]]:
    """`count` nodes made by `tongban exchange init-local` in `root`, on consecutive free
    ports searched from `port_start` (test modules that may run at once start apart),
    and served (see `serving`)."""
    base = free_port_block(count, start=port_start, step=port_step)
    init = ["exchange", "init-local", "--nodes", str(count), "--base-port", str(base)]
    init += ["--dir", str(root)] + ([] if demo else ["--no-demo"])
    out = run_cli(dict(os.environ), root, *init, timeout=INIT_TIMEOUT)
    assert out.returncode == 0, out.stderr
    with serving(root, env) as nodes:
        assert len(nodes) == count, sorted(nodes)
        yield nodes


def submit_case(http: httpx.Client, node: PeerNode, target: str) -> dict[str, Any]:
    """A demo resident of `node`'s jurisdiction applies there, over its API, for a
    city-level matter of `target` (a fresh ID-card PDF attached); the case as answered."""
    headers = node.token(http, PEOPLE[node.jurisdiction][0])
    r = http.post(
        f"{node.url}/api/v1/attachments",
        headers=headers,
        data={"material_code": "id_card"},
        files={"file": ("id.pdf", TINY_PDF + os.urandom(8).hex().encode(), "application/pdf")},
    )
    assert r.status_code == 201, r.text
    body = {
        "matter_code": SIMPLE_MATTER,
        "competent_jurisdiction": target,
        "competent_city": PEOPLE[target][1],
        "mode": "online",
        "form_data": SIMPLE_FORM,
        "consent": True,
        "attachment_ids": [r.json()["id"]],
    }
    r = http.post(f"{node.url}/api/v1/cases", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())
