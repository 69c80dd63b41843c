"""Each message type's contract: the typed schema its payload must match and who may
send it for the record it is about. A peer node is a party, not a friend: the inbox
parses a payload into its schema, then checks the sender's right, then applies it
(service._apply); a refusal says why and nothing is written.

Contexts declare a contract with their handler, `@exchange.handler(type, schema=…,
authorise=…)`, or apart with `contract(type, schema=…, authorise=…)`; a registered type
without one is refused (`no-contract`), and a test checks that none is left. Every
message carries its schema's version (the envelope's `version`, 1 when absent); a
contract names the versions it accepts (`versions=`, {1} by default) and any other is
refused before the payload is parsed (`unknown-version`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session


class Refused(Exception):
    """A message this node will never apply, and why: its payload does not match the
    type's schema (`bad-payload`), its sender has no right to send it for that record
    (`not-allowed`), its type declares no schema or authoriser (`no-contract`), or its
    schema version is not one the type accepts (`unknown-version`).
    Over HTTP the inbox answers 4xx (the sender parks it as dead at once); on local
    delivery it is parked as dead with the reason."""

    def __init__(self, reason: str, detail: str, status: int = 403) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status


@dataclass(frozen=True)
class Sender:
    """Who sent a message: a node of the federation (over HTTP, identified by its
    signature) or this node itself (local delivery), with the jurisdictions it serves
    and the envelope's source and target jurisdictions."""

    node: str | None  # None: this node
    jurisdictions: frozenset[str]  # "*" = every jurisdiction
    source_jurisdiction: str
    target_jurisdiction: str

    @property
    def local(self) -> bool:
        return self.node is None

    def serves(self, code: str | None) -> bool:
        return code is not None and ("*" in self.jurisdictions or code in self.jurisdictions)

    def require(self, code: str | None, what: str) -> None:
        """Refuse unless the sender serves `code`, the jurisdiction of `what` (Chinese)."""
        if not self.serves(code):
            raise Refused(
                "not-allowed",
                f"发送节点 {self.node or '本节点'} 不服务于{what}（{code or '未知'}），无权发送该消息",
            )


#: (session, parsed payload, sender) -> None; raises Refused when the sender has no right.
Authoriser = Callable[[Session, Any, Sender], None]


#: The schema version of a message that names none (every message before versions).
DEFAULT_VERSION = 1


@dataclass(frozen=True)
class Contract:
    """What a message type must be and who may send it."""

    schema: type[BaseModel]
    authorise: Authoriser
    #: The schema versions this node accepts; it sends the highest.
    versions: frozenset[int] = frozenset({DEFAULT_VERSION})

    @property
    def current(self) -> int:
        return max(self.versions)


_contracts: dict[str, Contract] = {}


def contract(
    message_type: str,
    *,
    schema: type[BaseModel],
    authorise: Authoriser,
    versions: Iterable[int] = (DEFAULT_VERSION,),
) -> None:
    """Declare the schema, the authoriser and the accepted schema versions of
    `message_type` (also usable apart from the handler's registration)."""
    accepted = frozenset(versions)
    if not accepted or any(
        isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in accepted
    ):
        raise ValueError(f"{message_type}: versions must be positive integers, got {versions!r}")
    _contracts[message_type] = Contract(schema, authorise, accepted)


def contract_for(message_type: str) -> Contract | None:
    return _contracts.get(message_type)


def version_for(message_type: str) -> int:
    """The schema version this node writes for `message_type` (the highest it accepts)."""
    found = _contracts.get(message_type)
    return DEFAULT_VERSION if found is None else found.current


def any_node(_session: Session, _payload: Any, _sender: Sender) -> None:
    """An authoriser for messages any node of the federation may send (the envelope's
    source jurisdiction is checked for every message before)."""


def _problem_text(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "；".join(parts) + (f"；另有 {more} 处错误" if more > 0 else "")


def check(
    session: Session,
    msg_type: str,
    payload: Mapping[str, Any],
    sender: Sender,
    version: int = DEFAULT_VERSION,
) -> BaseModel:
    """Check that `version` is one the type accepts, parse `payload` into its type's
    schema and check the sender's right to send it; raise Refused otherwise. Nothing is
    written."""
    found = _contracts.get(msg_type)
    if found is None:
        raise Refused("no-contract", f"消息类型 {msg_type} 未声明结构与发送权限", 422)
    if not sender.serves(sender.source_jurisdiction):
        raise Refused(
            "not-allowed",
            f"发送节点 {sender.node or '本节点'} 不服务于来源辖区 {sender.source_jurisdiction}",
        )
    if version not in found.versions:
        accepted = "、".join(str(v) for v in sorted(found.versions))
        raise Refused(
            "unknown-version",
            f"本节点不接受第 {version} 版的 {msg_type} 消息（接受的版本：{accepted}）",
            422,
        )
    try:
        model = found.schema.model_validate_json(json.dumps(payload, ensure_ascii=False))
    except ValidationError as exc:
        raise Refused(
            "bad-payload", f"{msg_type} 消息内容不合规：{_problem_text(exc)}", 422
        ) from exc
    except (TypeError, ValueError) as exc:  # not JSON-serialisable at all
        raise Refused("bad-payload", f"{msg_type} 消息内容不合规：{exc}", 422) from exc
    found.authorise(session, model, sender)
    return model


def covers(message_type: str) -> bool:
    """Whether `message_type` has a contract."""
    return message_type in _contracts
