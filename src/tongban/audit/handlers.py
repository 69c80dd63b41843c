"""The audit context's message handlers: witnessing between nodes (see witness.py).

Each payload is parsed into its typed schema (schemas.py) before anything is done; a
payload that does not parse, or a sender that is not the node the message is about, is
refused (raised: retried by the sender, then a dead letter an operator sees)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from tongban.audit import witness
from tongban.audit.schemas import CheckpointMessage, CosignedMessage
from tongban.exchange import service as exchange


def _parse(model: type[Any], payload: dict[str, Any]) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise witness.Refused(f"bad {model.__name__}: {exc.error_count()} error(s)") from exc


def _refuse(detail: str) -> Exception:
    refused = getattr(exchange, "Refused", None)
    return witness.Refused(detail) if refused is None else refused("not-allowed", detail)


def authorise_checkpoint(session: Session, m: CheckpointMessage, sender: Any) -> None:
    """Only the node whose chain it is may send its checkpoint, and never to itself."""
    if sender.node is None or m.node != sender.node:
        raise _refuse(f"节点 {sender.node or '本节点'} 无权发送 {m.node} 的审计检查点")


def authorise_cosigned(session: Session, m: CosignedMessage, sender: Any) -> None:
    """Only the witness itself may send its cosignature, and only of this node's chain."""
    node_id = exchange.current_settings().node_id
    if sender.node is None or m.witness != sender.node or m.node != node_id:
        raise _refuse(f"节点 {sender.node or '本节点'} 无权发送 {m.witness} 对 {m.node} 的副署")


@exchange.handler(witness.CHECKPOINT)
def on_checkpoint(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """A peer node's checkpoint to witness."""
    m = _parse(CheckpointMessage, payload)
    witness.receive_checkpoint(
        session,
        m,
        getattr(msg, "source_node", None),
        witness.Reply(msg.target_jurisdiction, msg.source_jurisdiction),
        getattr(msg, "id", None),
    )


@exchange.handler(witness.COSIGNED)
def on_cosigned(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """A peer node's cosignature of one of this node's checkpoints."""
    witness.receive_cosignature(
        session, _parse(CosignedMessage, payload), getattr(msg, "source_node", None)
    )


# The typed contract of each message type (schema + sender's right), where the exchange
# supports it (exchange.contract).
_contract = getattr(exchange, "contract", None)
if _contract is not None:
    _contract(witness.CHECKPOINT, schema=CheckpointMessage, authorise=authorise_checkpoint)
    _contract(witness.COSIGNED, schema=CosignedMessage, authorise=authorise_cosigned)
