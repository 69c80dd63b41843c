"""The exchange's per-type contract: parsed, then authorised, then applied; each refusal
says why (no database: the authorisers here do not read one)."""

from __future__ import annotations

from typing import Any

import pytest

from tongban.exchange import contracts
from tongban.exchange import service as exchange
from tongban.exchange.schema import Payload, Sha256


class _Blob(Payload):
    sha256: Sha256
    size: int


def _only_from_310000(_session: Any, _p: _Blob, sender: exchange.Sender) -> None:
    sender.require("310000", "上海")


@pytest.fixture(autouse=True)
def _contract() -> Any:
    exchange.contract("test.blob", schema=_Blob, authorise=_only_from_310000)
    yield
    contracts._contracts.pop("test.blob", None)


def _sender(*served: str, source: str = "310000") -> exchange.Sender:
    return exchange.Sender("peer", frozenset(served), source, "320000")


def test_a_valid_message_from_the_right_sender_passes() -> None:
    sha = "0f" * 32
    model = exchange.check(None, "test.blob", {"sha256": sha, "size": 3}, _sender("310000"))  # type: ignore[arg-type]
    assert isinstance(model, _Blob) and model.sha256 == sha


@pytest.mark.parametrize(
    "payload",
    [
        {"sha256": "/etc/passwd", "size": 3},
        {"sha256": "0F" * 32, "size": 3},  # uppercase is not how this platform writes it
        {"sha256": "0f" * 32, "size": "3"},  # strict: no coercion
        {"sha256": "0f" * 32, "size": 3, "path": "/etc"},  # unknown field
        {"size": 3},
    ],
)
def test_a_payload_off_its_schema_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(exchange.Refused) as e:
        exchange.check(None, "test.blob", payload, _sender("310000"))  # type: ignore[arg-type]
    assert e.value.reason == "bad-payload" and e.value.status == 422


def test_a_sender_without_the_right_is_refused() -> None:
    with pytest.raises(exchange.Refused) as e:
        exchange.check(
            None,  # type: ignore[arg-type]
            "test.blob",
            {"sha256": "0f" * 32, "size": 3},
            _sender("320000", source="320000"),
        )
    assert e.value.reason == "not-allowed" and e.value.status == 403


def test_a_source_the_sender_does_not_serve_is_refused() -> None:
    with pytest.raises(exchange.Refused) as e:
        exchange.check(None, "test.blob", {"sha256": "0f" * 32, "size": 3}, _sender("320000"))  # type: ignore[arg-type]
    assert e.value.reason == "not-allowed"


def test_a_type_without_a_contract_is_refused() -> None:
    with pytest.raises(exchange.Refused) as e:
        exchange.check(None, "test.nothing", {}, _sender("*"))  # type: ignore[arg-type]
    assert e.value.reason == "no-contract"


def test_the_decorator_keeps_its_call_style() -> None:
    @exchange.handler("test.plain")
    def plain(session: Any, payload: Any, msg: Any) -> None: ...

    try:
        assert "test.plain" in exchange.uncovered_types()  # registered, but refused
        exchange.contract("test.plain", schema=_Blob, authorise=exchange.any_node)
        assert "test.plain" not in exchange.uncovered_types()
    finally:
        exchange._handlers.pop("test.plain", None)
        contracts._contracts.pop("test.plain", None)


@pytest.mark.parametrize("version", [0, 2, 99])
def test_a_version_the_type_does_not_accept_is_refused_before_parsing(version: int) -> None:
    # The payload is off its schema too: the version is the reason, checked first.
    with pytest.raises(exchange.Refused) as e:
        exchange.check(None, "test.blob", {"size": "x"}, _sender("310000"), version)  # type: ignore[arg-type]
    assert e.value.reason == "unknown-version" and e.value.status == 422
    assert "test.blob" in e.value.detail and f"第 {version} 版" in e.value.detail


def test_a_contract_names_the_versions_it_accepts() -> None:
    sha = "0f" * 32
    assert exchange.version_for("test.blob") == 1  # default {1}
    exchange.contract("test.blob", schema=_Blob, authorise=_only_from_310000, versions={1, 2})
    assert exchange.version_for("test.blob") == 2  # a node writes the highest it accepts
    for v in (1, 2):
        exchange.check(None, "test.blob", {"sha256": sha, "size": 3}, _sender("310000"), v)  # type: ignore[arg-type]
    with pytest.raises(exchange.Refused) as e:
        exchange.check(None, "test.blob", {"sha256": sha, "size": 3}, _sender("310000"), 3)  # type: ignore[arg-type]
    assert e.value.reason == "unknown-version"
    with pytest.raises(ValueError):
        exchange.contract("test.blob", schema=_Blob, authorise=_only_from_310000, versions=())
