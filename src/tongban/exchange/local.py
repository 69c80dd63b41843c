"""A federation of N nodes on this machine, for demonstrations, tests and benchmarks:
per-node databases (migrated, loaded with the demo data), node keys and the federation
file naming them all (`tongban exchange init-local`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from tongban.config import Settings
from tongban.crypto.signing import Alg
from tongban.exchange import federation


@dataclass(frozen=True)
class LocalNode:
    id: str
    jurisdictions: tuple[str, ...]
    base_url: str
    port: int
    database_url: str
    directory: Path


def jurisdiction_codes() -> list[str]:
    """Every jurisdiction of the reference data, by code."""
    from tongban.regions.domain import read_cities

    return sorted({c.jurisdiction_code for c in read_cities(None)})


def plan(
    directory: Path,
    nodes: int,
    base_port: int,
    database_urls: list[str] | None = None,
    host: str = "127.0.0.1",
) -> list[LocalNode]:
    """Which node serves which jurisdictions (round robin), where it listens and keeps
    its data."""
    codes = jurisdiction_codes()
    if not 1 <= nodes <= len(codes):
        raise ValueError(f"--nodes must be between 1 and {len(codes)}")
    groups: list[list[str]] = [[] for _ in range(nodes)]
    for i, code in enumerate(codes):
        groups[i % nodes].append(code)
    out = []
    for i, group in enumerate(groups):
        node_id = f"node-{group[0]}"
        d = (directory / node_id).resolve()
        url = database_urls[i] if database_urls else f"sqlite:///{d / 'tongban.db'}"
        port = base_port + i
        out.append(LocalNode(node_id, tuple(group), f"http://{host}:{port}", port, url, d))
    return out


def init_local(
    directory: Path,
    nodes: int = 4,
    base_port: int = 8101,
    *,
    alg: Alg | str = Alg.EDDSA,
    database_urls: list[str] | None = None,
    demo: bool = True,
) -> tuple[Path, list[LocalNode]]:
    """Create the nodes (databases migrated and loaded, keys generated) and write
    `<directory>/federation.toml` and each node's `.env`; returns the file and nodes."""
    from tongban.catalog import service as catalog
    from tongban.contexts import build_node, registry
    from tongban.db import make_engine, session_factory
    from tongban.demo import load_demo
    from tongban.keys import service as keys
    from tongban.migrate import upgrade
    from tongban.regions import service as regions

    directory.mkdir(parents=True, exist_ok=True)
    fed_path = (directory / "federation.toml").resolve()
    planned = plan(directory, nodes, base_port, database_urls)
    # First every node's database and key, so that the federation file exists before the
    # demo data goes in: licences issued then are announced to the other nodes.
    entries = []
    for n in planned:
        n.directory.mkdir(parents=True, exist_ok=True)
        upgrade(n.database_url)
        engine = make_engine(n.database_url)
        try:
            # The node before it joins the federation (whose file is written below).
            alone = build_node(_node_settings(n, None), session_factory(engine))
            with alone.transaction() as session:
                regions.load_reference_data(session)
                catalog.load_catalogue(session)
                row = keys.current_row(session, "node", n.id) or keys.create_key(
                    session, "node", n.id, alg
                )
                jwk = keys.public_key(row).jwk()
        finally:
            engine.dispose()
        entries.append(
            {
                "id": n.id,
                "name": f"节点 {'、'.join(n.jurisdictions)}",
                "jurisdictions": list(n.jurisdictions),
                "base_url": n.base_url,
                "alg": row.alg,
                "public_key": {k: v for k, v in jwk.items() if k not in ("alg",)},
            }
        )
    fed_path.write_text(federation.dump("local", entries), encoding="utf-8")
    for n in planned:
        env = {
            "TONGBAN_DATABASE_URL": n.database_url,
            "TONGBAN_UPLOAD_DIR": str(n.directory / "uploads"),
            "TONGBAN_SECRET_KEY": secrets.token_urlsafe(32),
            "TONGBAN_NODE_ID": n.id,
            "TONGBAN_FEDERATION_FILE": str(fed_path),
            "TONGBAN_SERVED_JURISDICTIONS": ",".join(n.jurisdictions),
            "TONGBAN_PUBLIC_URL": n.base_url,
        }
        (n.directory / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        if demo:
            engine = make_engine(n.database_url)
            try:
                member = build_node(_node_settings(n, fed_path), session_factory(engine))
                with member.transaction() as session:
                    load_demo(session, registry())
            finally:
                engine.dispose()
    return fed_path, planned


def _node_settings(n: LocalNode, federation_file: Path | None) -> Settings:
    """The settings node `n` runs with (as its .env says), in `federation_file` if any."""
    return Settings(
        database_url=n.database_url,
        node_id=n.id,
        served_jurisdictions=",".join(n.jurisdictions),
        federation_file=federation_file,
        public_url=n.base_url,
    )
