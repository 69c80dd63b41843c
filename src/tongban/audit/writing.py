"""Writing entries of the audit chain by hand: what is not a row of an audited table
(`record`), and changes made in place (`record_change`). Both only stage the entry
(hook.stage): no key, checkpoint or reading code is needed, so contexts the audit
service itself imports (keys) can record without an import loop. `tongban.audit.service`
re-exports both."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tongban.audit import hook


def record(session: Session, kind: str, subject: str, actor: str, body: dict[str, Any]) -> None:
    """Add an entry to this node's chain in the caller's transaction (it disappears with
    a rollback): staged now, chained when the transaction commits or reads the chain
    (hook.stage). `subject` and `actor` are references like "case:<uuid>" and
    "account:<uuid>"; `body` is minimised data, made canonical JSON here."""
    hook.stage(session, kind, subject, actor, body)


#: kind of the entries recording an in-place change (record_change).
CHANGE_KIND = "change"


def record_change(
    session: Session,
    what: str,
    subject: str,
    actor: str,
    *,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
    **detail: Any,
) -> None:
    """Record a change made in place (a key rotated, a calendar day overridden, a role
    granted …) as an entry of the chain: kind "change", body {"what", "before", "after",
    "reason", …}. `what` names the change ("key.rotated", "calendar.override.added" …);
    `before`/`after` are the minimised values it replaced (no personal data beyond what
    the record itself holds); `actor` "account:<uuid>", "node:<id>" or "system". The
    entry is in the caller's transaction, like `record`."""
    body: dict[str, Any] = {"what": what, "before": before, "after": after}
    if reason:
        body["reason"] = reason
    body.update(detail)
    hook.stage(session, CHANGE_KIND, subject, actor, body)
