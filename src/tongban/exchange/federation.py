"""The federation file: which nodes exist, whom each serves, where it listens and the
public key it signs its messages with. TOML, read with the standard library.

```toml
name = "长三角"

[[nodes]]
id = "sh"
name = "上海节点"
jurisdictions = ["310000"]
base_url = "https://sh.example.gov.cn"
alg = "EdDSA"                                   # or "SM2"
public_key = { kty = "OKP", crv = "Ed25519", x = "…" }   # a JWK, or a PEM string
# optional: older keys still accepted (rotation), and which message types it may send
previous_keys = []
sends = ["case.forwarded", "case.status_changed"]
```

An optional top-level `trust_root = "<node id>"` names the node whose root key signs
the federation's e-licence trust list (see docs/licences.md, "Across nodes").

Without a file the node is the embedded default: one node serving every jurisdiction
("*"), which never needs a key because every message is applied locally.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tongban.crypto.signing import Alg, KeyError_, PublicKey, load_public_pem, public_from_jwk

_CODE = re.compile(r"^[0-9]{6}$")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class FederationError(ValueError):
    """A federation file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Node:
    """One node of the federation."""

    id: str
    name: str
    jurisdictions: tuple[str, ...]
    base_url: str
    keys: tuple[PublicKey, ...] = ()
    #: Message types this node may send; None = every type the receiver has a handler for.
    sends: frozenset[str] | None = None

    def serves(self, jurisdiction: str) -> bool:
        return "*" in self.jurisdictions or jurisdiction in self.jurisdictions

    def key(self, kid: str) -> PublicKey | None:
        return next((k for k in self.keys if k.kid == kid), None)

    @property
    def inbox_url(self) -> str:
        return self.base_url.rstrip("/") + "/exchange/v1/inbox"


@dataclass(frozen=True)
class Federation:
    name: str
    nodes: dict[str, Node] = field(default_factory=dict)
    source: Path | None = None
    #: The node whose root key signs the federation trust list (optional `trust_root`).
    trust_root: str | None = None

    @classmethod
    def embedded(cls, node_id: str = "local") -> Federation:
        """The embedded default: one node serving every jurisdiction."""
        return cls("embedded", {node_id: Node(node_id, node_id, ("*",), "http://127.0.0.1")})

    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            where = f" in {self.source}" if self.source else ""
            raise FederationError(f"node {node_id!r} is not in the federation{where}") from None

    def node_for(self, jurisdiction: str) -> Node | None:
        """The node that serves `jurisdiction` (an explicit code wins over '*')."""
        star = None
        for n in self.nodes.values():
            if jurisdiction in n.jurisdictions:
                return n
            if "*" in n.jurisdictions:
                star = n
        return star


def _key(value: Any, where: str) -> PublicKey:
    try:
        if isinstance(value, dict):
            return public_from_jwk(value)
        if isinstance(value, str) and "BEGIN PUBLIC KEY" in value:
            return load_public_pem(value)
    except KeyError_ as exc:
        raise FederationError(f"{where}: unreadable public key ({exc})") from exc
    raise FederationError(f"{where}: public_key must be a JWK table or a PEM string")


def _node(raw: Any, i: int, source: str) -> Node:
    where = f"{source}: nodes[{i}]"
    if not isinstance(raw, dict):
        raise FederationError(f"{where}: must be a table")
    node_id = raw.get("id")
    if not isinstance(node_id, str) or not _ID.match(node_id):
        raise FederationError(f"{where}: id must be lowercase letters, digits, - or _")
    where = f"{source}: node {node_id!r}"
    juris = raw.get("jurisdictions")
    if not isinstance(juris, list) or not juris or not all(isinstance(j, str) for j in juris):
        raise FederationError(f"{where}: jurisdictions must be a non-empty list of codes")
    for j in juris:
        if j != "*" and not _CODE.match(j):
            raise FederationError(f"{where}: {j!r} is not a 6-digit jurisdiction code")
    base_url = raw.get("base_url")
    parts = urlsplit(base_url) if isinstance(base_url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise FederationError(f"{where}: base_url must be an http(s) URL")
    if "public_key" not in raw:
        raise FederationError(f"{where}: public_key is missing")
    keys = [_key(raw["public_key"], where)]
    prev = raw.get("previous_keys", [])
    if not isinstance(prev, list):
        raise FederationError(f"{where}: previous_keys must be a list")
    keys += [_key(k, f"{where} previous_keys") for k in prev]
    alg = raw.get("alg")
    if alg is not None:
        try:
            want = Alg(alg)
        except ValueError:
            raise FederationError(f"{where}: alg must be EdDSA or SM2") from None
        if keys[0].alg is not want:
            raise FederationError(f"{where}: alg {alg} does not match its {keys[0].alg} key")
    sends = raw.get("sends")
    if sends is not None and (
        not isinstance(sends, list) or not all(isinstance(s, str) for s in sends)
    ):
        raise FederationError(f"{where}: sends must be a list of message types")
    return Node(
        id=node_id,
        name=str(raw.get("name", node_id)),
        jurisdictions=tuple(juris),
        base_url=base_url.rstrip("/"),  # type: ignore[union-attr]
        keys=tuple(keys),
        sends=frozenset(sends) if sends is not None else None,
    )


def parse(data: dict[str, Any], source: str = "<federation>") -> Federation:
    """A federation from parsed TOML; raises FederationError naming what is wrong."""
    nodes_raw = data.get("nodes")
    if not isinstance(nodes_raw, list) or not nodes_raw:
        raise FederationError(f"{source}: at least one [[nodes]] entry is required")
    nodes: dict[str, Node] = {}
    owner: dict[str, str] = {}
    for i, raw in enumerate(nodes_raw):
        n = _node(raw, i, source)
        if n.id in nodes:
            raise FederationError(f"{source}: node id {n.id!r} appears twice")
        for j in n.jurisdictions:
            if j in owner:
                raise FederationError(
                    f"{source}: jurisdiction {j} is served by both {owner[j]!r} and {n.id!r}"
                )
            owner[j] = n.id
        nodes[n.id] = n
    if "*" in owner and len(nodes) > 1:
        raise FederationError(f"{source}: '*' is only for a federation of one node")
    trust_root = data.get("trust_root")
    if trust_root is not None and (not isinstance(trust_root, str) or trust_root not in nodes):
        raise FederationError(f"{source}: trust_root must be the id of one of the nodes")
    return Federation(str(data.get("name", "federation")), nodes, trust_root=trust_root)


_cache: dict[tuple[str, float], Federation] = {}


def load(path: Path | str) -> Federation:
    """Read and check a federation file (cached until the file changes)."""
    p = Path(path)
    try:
        mtime = p.stat().st_mtime
    except OSError as exc:
        raise FederationError(f"{p}: cannot read the federation file ({exc.strerror})") from exc
    cached = _cache.get((str(p), mtime))
    if cached is not None:
        return cached
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise FederationError(f"{p}: not valid TOML ({exc})") from exc
    fed = parse(data, str(p))
    fed = Federation(fed.name, fed.nodes, p, fed.trust_root)
    _cache[(str(p), mtime)] = fed
    return fed


def dump(name: str, nodes: list[dict[str, Any]], trust_root: str | None = None) -> str:
    """A federation file's text for `nodes` (dicts with id, name, jurisdictions,
    base_url, alg and a public_key JWK)."""

    def s(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    out = [f"name = {s(name)}", *([f"trust_root = {s(trust_root)}"] if trust_root else []), ""]
    for n in nodes:
        jwk = ", ".join(f"{k} = {s(str(v))}" for k, v in n["public_key"].items())
        out += [
            "[[nodes]]",
            f"id = {s(n['id'])}",
            f"name = {s(n['name'])}",
            "jurisdictions = [" + ", ".join(s(j) for j in n["jurisdictions"]) + "]",
            f"base_url = {s(n['base_url'])}",
            f"alg = {s(n['alg'])}",
            f"public_key = {{ {jwk} }}",
            "",
        ]
    return "\n".join(out)
