"""Servers on 127.0.0.1 for the test suite and the benchmarks: a free port, a server
subprocess that counts as ready when `GET /healthz` answers and is always stopped, and
a throwaway PostgreSQL database. Nothing here is used by a running node."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

#: Seconds a server may take to answer /healthz, and to stop once asked.
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


class ServerFailed(RuntimeError):
    """The server exited before it was ready, or did not answer in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_block(count: int, start: int = 21000, step: int = 37) -> int:
    """The first port of `count` consecutive free ports on 127.0.0.1, searched from
    `start` in steps of `step` (`tongban exchange init-local --base-port` numbers its
    nodes' ports consecutively). Callers that may run at once start apart."""
    for base in range(start, 40000, step):
        try:
            for port in range(base, base + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise ServerFailed(f"no {count} consecutive free ports from {start}")


class ServerProcess:
    """One server subprocess with its log file (appended to across restarts)."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], base_url: str, log_path: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.base_url = base_url
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.log_path.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Return once GET /healthz answers 200; raise ServerFailed with the log's tail
        if the process exits first or `timeout` passes."""
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise ServerFailed(
                    f"{self.name} exited with {self.proc.returncode} before it was ready\n"
                    + self.log_tail()
                )
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ServerFailed(
                    f"{self.name} did not answer /healthz in {timeout:.0f} s\n" + self.log_tail()
                )
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` (SIGKILL to simulate a crash) and wait; kill if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)

    def log_tail(self, n: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"


@contextmanager
def running(
    name: str,
    argv: list[str],
    env: dict[str, str],
    port: int,
    logdir: Path,
    *,
    timeout: float = STARTUP_TIMEOUT,
) -> Iterator[str]:
    """A server subprocess on 127.0.0.1:`port`; yields its base URL once it is ready,
    and stops it however the block ends."""
    server = ServerProcess(
        name, argv, env, f"http://127.0.0.1:{port}", logdir / f"{name}-{port}.log"
    )
    server.start()
    try:
        server.wait_ready(timeout)
        yield server.base_url
    finally:
        server.stop()


@contextmanager
def pg_database(server_url: str, tag: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server at `server_url` (whose user may
    create databases); yields its URL and drops it afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"tongban_{tag}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
