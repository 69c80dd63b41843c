"""The rules of purpose-bound evidence: which kinds of evidence exist, which purposes may
ask for them, who may ask, what a consent must cover, and what data leaves the node.

Kinds and purposes are data (`data/evidence.json`), not code: another federation names
its own matters and purposes there. Nothing here imports SQLAlchemy or FastAPI.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any


class Provider(StrEnum):
    #: The data lives where the subject is registered (ID number / credit code area).
    HOME = "home"
    #: The data may live elsewhere (where contributions were paid, where a licence was
    #: issued): the officer names the jurisdiction, the subject's home by default.
    CHOOSE = "choose"


class Status(StrEnum):
    PENDING = "pending"
    ANSWERED = "answered"
    REFUSED = "refused"


STATUS_LABELS = {Status.PENDING: "等待答复", Status.ANSWERED: "已提供", Status.REFUSED: "已拒绝"}
CHANNEL_LABELS = {"online": "网上申请时本人授权", "window": "窗口受理时申请人当面授权"}


class Reason(StrEnum):
    """Why a provider refuses a request; each has its own code and Chinese text."""

    UNKNOWN_KIND = "unknown-kind"
    SUBJECT_TYPE = "subject-type"
    UNKNOWN_AUTHORITY = "unknown-authority"
    AUTHORITY_TYPE = "authority-type"
    UNKNOWN_PURPOSE = "unknown-purpose"
    PURPOSE_KIND = "purpose-kind"
    PURPOSE_MATTER = "purpose-matter"
    CASE_STATE = "case-not-in-handling"
    NO_CONSENT = "no-consent"
    CONSENT_SUBJECT = "consent-subject"
    CONSENT_CASE = "consent-case"
    CONSENT_SCOPE = "consent-scope"
    CONSENT_LATE = "consent-late"
    NO_RECORD = "no-record"


@dataclass(frozen=True)
class EvidenceKind:
    code: str
    label: str
    description: str
    subjects: frozenset[str]
    provider: Provider
    #: (key, label) of what is returned — everything else in the register stays home.
    fields: tuple[tuple[str, str], ...]
    #: For list-valued fields (licences): the keys of each item that are returned.
    item_fields: tuple[tuple[str, str], ...]
    #: Authority types (regions.AuthorityType values) that may ask for it.
    requester_types: frozenset[str]

    @property
    def field_labels(self) -> dict[str, str]:
        return dict(self.fields)

    @property
    def item_labels(self) -> dict[str, str]:
        return dict(self.item_fields)


@dataclass(frozen=True)
class Purpose:
    code: str
    label: str
    kinds: frozenset[str]
    #: The matters (catalogue codes) this purpose serves …
    matters: frozenset[str] = frozenset()
    #: … or every matter handled by authorities of these types.
    authority_types: frozenset[str] = frozenset()
    #: Narrower field sets per kind, where the purpose needs less than the kind returns.
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def serves(self, matter_code: str, matter_authority_type: str | None) -> bool:
        """Whether this purpose fits a case of `matter_code`."""
        return matter_code in self.matters or (
            matter_authority_type is not None and matter_authority_type in self.authority_types
        )


@dataclass(frozen=True)
class Catalogue:
    kinds: dict[str, EvidenceKind]
    purposes: dict[str, Purpose]

    def kind(self, code: str) -> EvidenceKind | None:
        return self.kinds.get(code)

    def purpose(self, code: str) -> Purpose | None:
        return self.purposes.get(code)

    def purposes_for(
        self, kind: str, matter_code: str, matter_authority_type: str | None
    ) -> list[Purpose]:
        """The purposes under which a case of this matter may ask for `kind`."""
        return [
            p
            for p in self.purposes.values()
            if kind in p.kinds and p.serves(matter_code, matter_authority_type)
        ]

    def kinds_for_matter(
        self, matter_code: str, matter_authority_type: str | None, subject_type: str | None = None
    ) -> list[EvidenceKind]:
        """Kinds some purpose lets a case of this matter ask for (what consent may cover)."""
        return [
            k
            for k in self.kinds.values()
            if (subject_type is None or subject_type in k.subjects)
            and self.purposes_for(k.code, matter_code, matter_authority_type)
        ]


def parse_catalogue(raw: dict[str, Any]) -> Catalogue:
    """Build the catalogue from its JSON form, checking that purposes name real kinds."""
    kinds = {}
    for k in raw["kinds"]:
        kinds[k["code"]] = EvidenceKind(
            code=k["code"],
            label=k["label"],
            description=k.get("description", ""),
            subjects=frozenset(k.get("subjects", ["resident"])),
            provider=Provider(k.get("provider", "home")),
            fields=tuple((f[0], f[1]) for f in k["fields"]),
            item_fields=tuple((f[0], f[1]) for f in k.get("item_fields", [])),
            requester_types=frozenset(k["requester_types"]),
        )
    purposes = {}
    for p in raw["purposes"]:
        unknown = set(p["kinds"]) - kinds.keys()
        if unknown:
            raise ValueError(f"purpose {p['code']} names unknown kinds {sorted(unknown)}")
        narrowed = {kind: tuple(keys) for kind, keys in p.get("fields", {}).items()}
        for kind, keys in narrowed.items():
            extra = set(keys) - kinds[kind].field_labels.keys()
            if extra:
                raise ValueError(f"purpose {p['code']} widens {kind} with {sorted(extra)}")
        purposes[p["code"]] = Purpose(
            code=p["code"],
            label=p["label"],
            kinds=frozenset(p["kinds"]),
            matters=frozenset(p.get("matters", [])),
            authority_types=frozenset(p.get("authority_types", [])),
            fields=narrowed,
        )
    return Catalogue(kinds=kinds, purposes=purposes)


@cache
def catalogue(path: Path | None = None) -> Catalogue:
    """The evidence catalogue shipped with the package (or read from `path`)."""
    if path is None:
        path = Path(str(resources.files("tongban.evidence") / "data" / "evidence.json"))
    return parse_catalogue(json.loads(path.read_text(encoding="utf-8")))


# --- where the data lives ---------------------------------------------------------


def home_jurisdiction(identifier: str, subject_type: str = "resident") -> str | None:
    """The province-level GB/T 2260 code encoded in a subject's identifier: digits 1–2
    of a GB 11643 ID number, digits 3–4 of a GB 32100 credit code (its registration
    area). None when the identifier carries none."""
    area = identifier[2:8] if subject_type == "enterprise" else identifier[:6]
    if len(area) != 6 or not area.isdigit() or area[:2] == "00":
        return None
    return area[:2] + "0000"


# --- the provider's decision --------------------------------------------------------


@dataclass(frozen=True)
class ConsentSnapshot:
    """The applicant's consent as carried inside a request."""

    case_number: str
    subject: str
    scopes: frozenset[str]
    given_at: datetime
    channel: str

    def as_payload(self) -> dict[str, Any]:
        return {
            "case_number": self.case_number,
            "subject": self.subject,
            "scopes": sorted(self.scopes),
            "given_at": self.given_at.isoformat(),
            "channel": self.channel,
        }

    @classmethod
    def from_payload(cls, raw: dict[str, Any] | None) -> ConsentSnapshot | None:
        if not raw:
            return None
        return cls(
            case_number=str(raw["case_number"]),
            subject=str(raw["subject"]),
            scopes=frozenset(raw.get("scopes") or ()),
            given_at=datetime.fromisoformat(raw["given_at"]),
            channel=str(raw.get("channel", "")),
        )


@dataclass(frozen=True)
class Ask:
    """What the provider knows about a request when it decides."""

    kind: str
    purpose: str
    subject: str
    subject_type: str
    case_number: str
    matter_code: str
    #: From the provider's own catalogue; None if the matter is unknown to it.
    matter_authority_type: str | None
    #: From the provider's own reference data; None if the authority is unknown or does
    #: not belong to the jurisdiction the message came from.
    requester_type: str | None
    requested_at: datetime
    #: The case's state as the requester states it (it cannot be verified here: the
    #: case lives on the requester's node); None from a peer that does not send it.
    case_state: str | None = None


@dataclass(frozen=True)
class Refusal:
    reason: Reason
    text: str


#: 受理后、办结前: the case states (cases.domain.CaseState values) in which the case is
#: being handled, so that evidence may be asked for it.
HANDLING_STATES = frozenset({"accepted", "under_review", "review_correction", "pending_approval"})
#: Before acceptance: evidence is not yet needed.
NOT_YET_ACCEPTED = frozenset({"submitted", "correction_requested"})
#: How the officer's panel and the refusal name the other states.
CASE_STATE_LABELS = {
    "submitted": "已提交，待受理",
    "correction_requested": "待补正",
    "withdrawn": "视为撤回",
    "refused": "不予受理",
    "approved": "准予办理",
    "denied": "不予办理",
    "result_issued": "已出具结果",
    "delivered": "已送达",
    "rated": "已评价",
}


def window_closed(case_state: str) -> str | None:
    """Why evidence may not be asked for a case in `case_state` (None: it may): only
    after acceptance and before the decision."""
    if case_state in HANDLING_STATES:
        return None
    label = CASE_STATE_LABELS.get(case_state, case_state)
    if case_state in NOT_YET_ACCEPTED:
        return f"办件尚未受理（当前：{label}），受理后方可调取证明"
    return f"办件已不在办理中（当前：{label}），不能再调取证明"


def decide(cat: Catalogue, ask: Ask, consent: ConsentSnapshot | None) -> Refusal | None:
    """The provider's checks, in order: kind, requester authority, purpose, consent.
    None means the request may be answered (if the register holds a record)."""
    kind = cat.kind(ask.kind)
    if kind is None:
        return Refusal(Reason.UNKNOWN_KIND, f"未知的证明类型“{ask.kind}”")
    if ask.subject_type not in kind.subjects:
        return Refusal(Reason.SUBJECT_TYPE, f"{kind.label}不适用于该类申请人")
    if ask.requester_type is None:
        return Refusal(
            Reason.UNKNOWN_AUTHORITY, "请求单位不在联盟部门名录中，或不属于发出请求的辖区"
        )
    if ask.requester_type not in kind.requester_types:
        return Refusal(Reason.AUTHORITY_TYPE, f"请求单位所属部门类别无权调取{kind.label}")
    purpose = cat.purpose(ask.purpose)
    if purpose is None:
        return Refusal(Reason.UNKNOWN_PURPOSE, f"用途代码“{ask.purpose}”未登记")
    if kind.code not in purpose.kinds:
        return Refusal(Reason.PURPOSE_KIND, f"用途“{purpose.label}”不得调取{kind.label}")
    if not purpose.serves(ask.matter_code, ask.matter_authority_type):
        return Refusal(Reason.PURPOSE_MATTER, f"用途“{purpose.label}”与办件事项不符")
    if ask.case_state is not None:
        closed = window_closed(ask.case_state)
        if closed is not None:
            return Refusal(Reason.CASE_STATE, closed)
    if consent is None:
        return Refusal(Reason.NO_CONSENT, "申请人未就本办件授权调取其数据")
    if consent.subject != ask.subject:
        return Refusal(Reason.CONSENT_SUBJECT, "授权人与被调取数据的人不一致")
    if consent.case_number != ask.case_number:
        return Refusal(Reason.CONSENT_CASE, "授权不属于本办件")
    if kind.code not in consent.scopes:
        return Refusal(Reason.CONSENT_SCOPE, f"申请人的授权不包含{kind.label}")
    if consent.given_at > ask.requested_at:
        return Refusal(Reason.CONSENT_LATE, "授权时间晚于调取请求")
    return None


def no_record(cat: Catalogue, kind_code: str) -> Refusal:
    kind = cat.kind(kind_code)
    label = kind.label if kind else kind_code
    return Refusal(Reason.NO_RECORD, f"数据所在地未登记该申请人的{label}")


def minimise(
    cat: Catalogue, kind_code: str, purpose_code: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Only the fields the kind returns — narrowed further by the purpose — leave the node;
    list items (licences) keep only the kind's item fields."""
    kind = cat.kinds[kind_code]
    purpose = cat.purpose(purpose_code)
    keys: Iterable[str] = [k for k, _ in kind.fields]
    if purpose is not None and kind_code in purpose.fields:
        keys = [k for k in keys if k in purpose.fields[kind_code]]
    item_keys = [k for k, _ in kind.item_fields]
    out: dict[str, Any] = {}
    for key in keys:
        if key not in data:
            continue
        value = data[key]
        if isinstance(value, list) and item_keys:
            value = [
                {k: item[k] for k in item_keys if k in item}
                for item in value
                if isinstance(item, dict)
            ]
        out[key] = value
    return out


def normalise_scopes(cat: Catalogue, scopes: Iterable[str]) -> tuple[list[str], list[str]]:
    """(known kinds in catalogue order, unknown values) of a consent's scopes."""
    chosen = {s.strip() for s in scopes if s and s.strip()}
    known = [k for k in cat.kinds if k in chosen]
    return known, sorted(chosen - cat.kinds.keys())
