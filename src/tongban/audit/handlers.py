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
