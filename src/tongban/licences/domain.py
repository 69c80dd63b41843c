"""Rules of e-licences that need no database: the type catalogue, claim validation,
status transitions, issuer ids and credit codes, status-list index allocation.

The signed formats themselves (JWS, SD-JWT VC, status lists, trust list, verification)
live in jws.py, sdjwt.py, statuslist.py, trustlist.py and verify.py."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Any

from stdnum.cn import uscc

from tongban.kernel.lifecycle import IllegalTransition, StateMachine

#: Entries per status list: 2^17 licences, 2 bits each (32 KiB before compression).
STATUS_LIST_SIZE = 2**17
#: A list takes new licences until this share of its indices is used; then the next one
#: opens. Random indices in a list that is at most this full take ≤ 4 tries on average.
STATUS_LIST_FILL = 0.75
#: 2 bits: 0 valid, 1 invalid (revoked), 2 suspended (IETF Token Status List).
STATUS_BITS = 2


class LicenceStatus(StrEnum):
    VALID = "valid"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class LicenceAction(StrEnum):
    ISSUE = "issue"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    REVOKE = "revoke"
    #: Re-issued bound to the holder's device key (or unbound after its withdrawal);
    #: the status does not change.
    BIND = "bind"


STATUS_LABELS = {
    LicenceStatus.VALID: "有效",
    LicenceStatus.SUSPENDED: "已暂停",
    LicenceStatus.REVOKED: "已注销",
}
ACTION_LABELS = {
    LicenceAction.ISSUE: "签发",
    LicenceAction.SUSPEND: "暂停",
    LicenceAction.REINSTATE: "恢复",
    LicenceAction.REVOKE: "注销",
    LicenceAction.BIND: "重新签发并绑定设备",
}

#: (from, action) -> to. Revoked is final.
TRANSITIONS: dict[tuple[LicenceStatus, LicenceAction], LicenceStatus] = {
    (LicenceStatus.VALID, LicenceAction.SUSPEND): LicenceStatus.SUSPENDED,
    (LicenceStatus.SUSPENDED, LicenceAction.REINSTATE): LicenceStatus.VALID,
    (LicenceStatus.VALID, LicenceAction.REVOKE): LicenceStatus.REVOKED,
    (LicenceStatus.SUSPENDED, LicenceAction.REVOKE): LicenceStatus.REVOKED,
}


#: The licence lifecycle on the kernel's state machine (issuing creates a valid licence;
#: re-issuing bound to a device key, `bind`, changes no status and is only an event).
MACHINE: StateMachine[LicenceStatus, LicenceAction] = StateMachine(
    LicenceStatus,
    LicenceAction,
    TRANSITIONS,
    state_labels=STATUS_LABELS,
    action_labels=ACTION_LABELS,
    noun="证照",
)

#: An action that the licence's current status does not allow (message in Chinese).
IllegalStatusChange = IllegalTransition


def next_status(current: LicenceStatus | str, action: LicenceAction | str) -> LicenceStatus:
    """Where a licence goes on `action`; raises IllegalStatusChange."""
    return MACHINE.next_state(LicenceStatus(current), LicenceAction(action))


def allowed_actions(current: LicenceStatus | str) -> list[LicenceAction]:
    return MACHINE.allowed_actions(LicenceStatus(current))


# --- the type catalogue ---------------------------------------------------------------


@dataclass(frozen=True)
class FieldDef:
    name: str
    label: str
    #: Personal data: a selectively disclosable claim the holder may withhold.
    personal: bool = True
    required: bool = True


@dataclass(frozen=True)
class LicenceType:
    code: str
    name: str
    #: GB/T 36904 licence type code (the <type> part of the identifier).
    type_code: str
    #: regions AuthorityType of the authorities that issue it.
    authority_type: str
    #: Which kinds of holder it is issued to: resident and/or enterprise.
    holders: tuple[str, ...]
    #: Years of validity from issuance; None: valid until revoked.
    validity_years: int | None
    vct: str
    fields: tuple[FieldDef, ...]

    def field(self, name: str) -> FieldDef | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def personal_fields(self) -> list[FieldDef]:
        return [f for f in self.fields if f.personal]

    @property
    def labels(self) -> dict[str, str]:
        return {f.name: f.label for f in self.fields}


def _read_types() -> dict[str, LicenceType]:
    path = resources.files("tongban.licences") / "data" / "licence_types.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, LicenceType] = {}
    for t in raw["types"]:
        out[t["code"]] = LicenceType(
            code=t["code"],
            name=t["name"],
            type_code=t["type_code"],
            authority_type=t["authority_type"],
            holders=tuple(t["holders"]),
            validity_years=t.get("validity_years"),
            vct=t["vct"],
            fields=tuple(
                FieldDef(
                    f["name"], f["label"], bool(f.get("personal", True)), f.get("required", True)
                )
                for f in t["fields"]
            ),
        )
    return out


@lru_cache(maxsize=1)
def licence_types() -> dict[str, LicenceType]:
    """Every licence type, by code (packaged data: data/licence_types.json)."""
    return _read_types()


def type_by_vct(vct: str) -> LicenceType | None:
    return next((t for t in licence_types().values() if t.vct == vct), None)


def validate_claims(ltype: LicenceType, claims: Mapping[str, Any]) -> list[dict[str, str]]:
    """Problems with the claims of a licence of `ltype` ([] when fine): every required
    field present and non-empty, no unknown field, values strings or numbers."""
    errors = []
    for f in ltype.fields:
        value = claims.get(f.name)
        if f.required and (value is None or (isinstance(value, str) and not value.strip())):
            errors.append({"field": f"claims.{f.name}", "message": f"请填写{f.label}"})
    for name, value in claims.items():
        if ltype.field(name) is None:
            errors.append({"field": f"claims.{name}", "message": f"{ltype.name}没有字段 {name}"})
        elif value is not None and not isinstance(value, (str, int, float)):
            errors.append({"field": f"claims.{name}", "message": "字段值须为文字或数字"})
        elif isinstance(value, str) and len(value) > 500:
            errors.append({"field": f"claims.{name}", "message": "字段值过长"})
    return errors


def clean_claims(ltype: LicenceType, claims: Mapping[str, Any]) -> dict[str, Any]:
    """The claims in the type's field order, strings stripped, empty optional ones dropped."""
    out: dict[str, Any] = {}
    for f in ltype.fields:
        value = claims.get(f.name)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            continue
        out[f.name] = value
    return out


def valid_until(ltype: LicenceType, start: datetime) -> datetime | None:
    """End of validity for a licence issued at `start` (None: no end)."""
    if ltype.validity_years is None:
        return None
    try:
        return start.replace(year=start.year + ltype.validity_years)
    except ValueError:  # 29 February
        return start.replace(year=start.year + ltype.validity_years, day=28)


# --- issuers -----------------------------------------------------------------------------


def issuer_id(public_url: str, jurisdiction_code: str) -> str:
    """The `iss` of a jurisdiction's licences: <public url>/issuers/<code>."""
    return f"{public_url.rstrip('/')}/issuers/{jurisdiction_code}"


def jurisdiction_of_issuer(iss: str) -> str | None:
    """The jurisdiction code at the end of an issuer id, if it has that shape."""
    head, sep, code = iss.rstrip("/").rpartition("/issuers/")
    return code if sep and code.isdigit() and len(code) == 6 else None


def status_list_uri(public_url: str, jurisdiction_code: str, list_no: int) -> str:
    return f"{public_url.rstrip('/')}/api/v1/status-lists/{jurisdiction_code}/{list_no}"


_ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _org_code(body8: str) -> str:
    """GB 11714 organisation code: 8 characters and their check character."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(_ORG_ALPHABET.index(c) * w for c, w in zip(body8, weights, strict=True))
    check = 11 - total % 11
    return body8 + ("X" if check == 10 else "0" if check == 11 else str(check))


def authority_credit_code(authority_code: str, area_code: str) -> str:
    """A stable 18-character unified social credit code for an authority (category 1,
    government organ: `11` + area + organisation code + check). The reference data has no
    real codes, so the organisation code is derived from the authority's code: the same on
    every node, valid under GB 32100, and replaced by the real one where it is known."""
    digest = int.from_bytes(hashlib.sha256(authority_code.encode()).digest()[:8], "big")
    body = "11" + area_code[:6] + _org_code(f"{digest % 10**8:08d}")
    return body + uscc.calc_check_digit(body)


# --- status-list index allocation ------------------------------------------------------------


def pick_index(
    used: Callable[[int], bool],
    size: int = STATUS_LIST_SIZE,
    rand: Callable[[int], int] = secrets.randbelow,
    tries: int = 64,
) -> int | None:
    """A random unused index of a list of `size` (None after `tries` collisions).

    Random rather than sequential: a sequential index tells a verifier roughly when the
    licence was issued and lets two verifiers who see neighbouring indices link them;
    a random one says nothing (the list is large and shared by every licence of the
    jurisdiction: herd privacy)."""
    for _ in range(tries):
        idx = rand(size)
        if not used(idx):
            return idx
    return None


def list_is_full(count: int, size: int = STATUS_LIST_SIZE) -> bool:
    return count >= int(size * STATUS_LIST_FILL)


def disclosable(ltype: LicenceType, requested: Collection[str]) -> list[str]:
    """The requested claim names that are personal fields of the type, in type order;
    unknown names raise ValueError (message in Chinese)."""
    names = set(requested)
    unknown = [n for n in names if ltype.field(n) is None or not ltype.field(n).personal]  # type: ignore[union-attr]
    if unknown:
        raise ValueError("不能选择的字段：" + "、".join(sorted(unknown)))
    return [f.name for f in ltype.fields if f.personal and f.name in names]


def local_date(value: datetime | date | None) -> str:
    return value.isoformat()[:10] if value else ""
