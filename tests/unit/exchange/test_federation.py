"""The federation file: what loads, and every mistake named with where it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from tongban.crypto.signing import Alg, generate
from tongban.exchange.federation import Federation, FederationError, dump, load

ED = generate(Alg.EDDSA)
SM = generate(Alg.SM2)


def _jwk(key=ED) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {k: v for k, v in key.public().jwk().items() if k != "alg"}


def _nodes() -> list[dict]:  # type: ignore[type-arg]
    return [
        {
            "id": "sh",
            "name": "上海节点",
            "jurisdictions": ["310000"],
            "base_url": "http://127.0.0.1:8101",
            "alg": "EdDSA",
            "public_key": _jwk(ED),
        },
        {
            "id": "js",
            "name": "江苏节点",
            "jurisdictions": ["320000", "340000"],
            "base_url": "https://js.example/",
            "alg": "SM2",
            "public_key": _jwk(SM),
        },
    ]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "federation.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_a_written_file_loads_back(tmp_path: Path) -> None:
    fed = load(_write(tmp_path, dump("长三角", _nodes())))
    assert fed.name == "长三角" and set(fed.nodes) == {"sh", "js"}
    js = fed.node("js")
    assert js.base_url == "https://js.example" and js.inbox_url.endswith("/exchange/v1/inbox")
    assert js.key(SM.kid) is not None and js.key(ED.kid) is None
    assert fed.node_for("340000") is js and fed.node_for("330000") is None
    assert js.sends is None


def test_pem_keys_previous_keys_and_sends(tmp_path: Path) -> None:
    old = generate(Alg.EDDSA)
    text = f'''
name = "x"
[[nodes]]
id = "a"
jurisdictions = ["310000"]
base_url = "http://a"
public_key = """{ED.public().pem()}"""
previous_keys = [{{ kty = "OKP", crv = "Ed25519", x = "{old.public().jwk()["x"]}" }}]
sends = ["case.forwarded"]
'''
    a = load(_write(tmp_path, text)).node("a")
    assert a.key(ED.kid) and a.key(old.kid)
    assert a.sends == frozenset({"case.forwarded"})


def test_embedded_default_serves_everything() -> None:
    fed = Federation.embedded("local")
    assert fed.node_for("330000") is fed.node("local")


def _broken(**change: object) -> list[dict]:  # type: ignore[type-arg]
    nodes = _nodes()
    nodes[1] = {**nodes[1], **change}
    return nodes


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        pytest.param(_broken(id="sh"), "appears twice", id="duplicate-id"),
        pytest.param(_broken(jurisdictions=["310000"]), "served by both", id="served-twice"),
        pytest.param(_broken(jurisdictions=["32000"]), "6-digit", id="bad-code"),
        pytest.param(_broken(jurisdictions=["*"]), "federation of one", id="star-with-others"),
        pytest.param(_broken(base_url="ftp://x"), r"http\(s\) URL", id="bad-url"),
        pytest.param(_broken(alg="EdDSA"), "does not match", id="alg-mismatch"),
        pytest.param(_broken(alg="RSA"), "EdDSA or SM2", id="unknown-alg"),
        pytest.param(
            _broken(public_key={"kty": "OKP", "crv": "Ed25519", "x": "AA"}),
            "unreadable",
            id="bad-key",
        ),
        pytest.param(_broken(id="Bad Id"), "lowercase", id="bad-id"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, nodes: list[dict], message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(FederationError, match=message):
        load(_write(tmp_path, dump("x", nodes)))


def test_missing_key_missing_nodes_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FederationError, match="public_key is missing"):
        load(
            _write(
                tmp_path,
                'name="x"\n[[nodes]]\nid="a"\njurisdictions=["310000"]\nbase_url="http://a"\n',
            )
        )
    with pytest.raises(FederationError, match=r"\[\[nodes\]\]"):
        load(_write(tmp_path, 'name = "x"\n'))
    with pytest.raises(FederationError, match="not valid TOML"):
        load(_write(tmp_path, "name = \n"))
    with pytest.raises(FederationError, match="cannot read"):
        load(tmp_path / "nope.toml")
    with pytest.raises(FederationError, match="not in the federation"):
        Federation.embedded("local").node("other")
