"""The audit context's message handlers: witnessing between nodes (see witness.py).

Each type declares its contract with the exchange: the payload's typed schema
(schemas.py) and who may send it (the node whose chain a checkpoint is; the witness
itself for a cosignature, and only for this node's chain). The exchange parses and
authorises before the handler runs; a refusal is permanent (the sender parks the
message as dead)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from tongban.audit import witness
from tongban.audit.schemas import CheckpointMessage, CosignedMessage
from tongban.exchange import service as exchange
from tongban.kernel.node import settings_of


def authorise_checkpoint(session: Session, m: CheckpointMessage, sender: exchange.Sender) -> None:
    """Only the node whose chain it is may send its checkpoint, and never to itself."""
    if sender.node is None or m.node != sender.node:
        raise witness.Refused(f"节点 {sender.node or '本节点'} 无权发送 {m.node} 的审计检查点")


def authorise_cosigned(session: Session, m: CosignedMessage, sender: exchange.Sender) -> None:
    """Only the witness itself may send its cosignature, and only of this node's chain."""
    node_id = settings_of(session).node_id
    if sender.node is None or m.witness != sender.node or m.node != node_id:
        raise witness.Refused(
            f"节点 {sender.node or '本节点'} 无权发送 {m.witness} 对 {m.node} 的副署"
        )


@exchange.handler(witness.CHECKPOINT, schema=CheckpointMessage, authorise=authorise_checkpoint)
def on_checkpoint(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """A peer node's checkpoint to witness."""
    m = CheckpointMessage.model_validate_json(json.dumps(payload, ensure_ascii=False))
    witness.receive_checkpoint(
        session,
        m,
        getattr(msg, "source_node", None),
        witness.Reply(msg.target_jurisdiction, msg.source_jurisdiction),
        getattr(msg, "id", None),
    )


@exchange.handler(witness.COSIGNED, schema=CosignedMessage, authorise=authorise_cosigned)
def on_cosigned(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """A peer node's cosignature of one of this node's checkpoints."""
    m = CosignedMessage.model_validate_json(json.dumps(payload, ensure_ascii=False))
    witness.receive_cosignature(session, m, getattr(msg, "source_node", None))
