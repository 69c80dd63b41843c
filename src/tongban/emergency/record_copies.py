"""What every emergency record with copies on other nodes (an aid request, commitment and
shipment, copies.py; an incident, incidents.py; a hand-over, handover.py) declares alike
on the kernel's replication (`kernel.replication.Copies`):

- its messages are `emergency.<kind>.shared` (the snapshot) and `emergency.<kind>.changed`;
- a payload names the record by its id (`<kind>_id`) and is labelled by its `number`;
- one jurisdiction's node shares the record and (unless said otherwise) writes its
  changes: the one a field of the record names (`writer`, e.g. `lead_jurisdiction`);
- a new copy takes its id, number and state from the snapshot, is marked a replica, was
  created and last changed at the snapshot's `created_at`, and holds no events yet (the
  kernel adopts them); a change moves its state and `updated_at` with the fields it names;
- times travel as ISO 8601 text and ids as text."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from tongban.exchange import service as exchange
from tongban.kernel import replication

R = TypeVar("R")


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def from_iso(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def new_copy(p: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The fields every new copy takes alike from its snapshot `p` (its id at `key`)."""
    return {
        "id": as_uuid(p[key]),
        "number": p["number"],
        "state": str(p["state"]),
        "replica": True,
        "created_at": from_iso(p["created_at"]),
        "updated_at": from_iso(p["created_at"]),
        "events": [],
    }


def follow_state(rec: Any, p: Mapping[str, Any]) -> None:
    """What every change moves alike on a copy: its state and when it last changed."""
    rec.state = str(p["state"])
    rec.updated_at = from_iso(p["updated_at"]) or rec.updated_at


def record_copies(
    model: type[R],
    kind: str,
    noun: str,
    *,
    snapshot_schema: type[BaseModel],
    change_schema: type[BaseModel],
    create: Callable[[Session, Mapping[str, Any]], R],
    follow: Callable[[Session, R, Mapping[str, Any]], None],
    snapshot: Callable[[Session, R], dict[str, Any]],
    change: Callable[[Session, R, Any], dict[str, Any]],
    writer: str,
    check_snapshot: Callable[[Session, Any, exchange.Sender], None],
    check_change: Callable[[Session, Any, exchange.Sender, R], None],
    lane: Callable[[Mapping[str, Any]], str | None],
    changed_by: Callable[[R, Any], str] | None = None,
) -> replication.Copies[R]:
    """The copies of `model` records (`kind`: request, incident, …; `noun`: what a message
    calls one, in Chinese), as the module docstring says, with what differs per kind."""
    key = f"{kind}_id"
    return replication.Copies(
        noun=noun,
        snapshot_type=f"emergency.{kind}.shared",
        snapshot_schema=snapshot_schema,
        change_type=f"emergency.{kind}.changed",
        change_schema=change_schema,
        find=lambda session, p: session.get(model, as_uuid(p[key])),
        create=create,
        follow=follow,
        snapshot=snapshot,
        change=change,
        shared_by=lambda p: str(getattr(p, writer)),
        changed_by=changed_by or (lambda rec, _p: str(getattr(rec, writer))),
        label=lambda p: str(p["number"]),
        check_snapshot=check_snapshot,
        lane=lane,
        check_change=check_change,
    )
