"""Offline verification of a dynamic code at a gate or venue: no network, no database.

A gate holds what its last sync brought (gate.py): the issuers' keys from the verified
federation trust list, indexed by (jurisdiction, 8-byte key id), and the verified
revocation list of every jurisdiction. `Verifier.check` decides in well under a
millisecond of Python (two signature checks dominate) and never raises: every refusal
is a `Refusal` with its own Chinese sentence —

- MALFORMED: not a code of this format (a photo of something else, a truncated scan);
- UNKNOWN_ISSUER: no trusted key of that jurisdiction with that key id, or the key was
  not valid when the credential was issued (rotated before, withdrawn, revoked);
- BAD_SIGNATURE: the issuer's signature over the credential, or the device's over the
  code, does not verify (forged or altered bytes, another device's key);
- EXPIRED: the credential's validity is over, or the code is older than the window
  (a screenshot);
- CLOCK_SKEW: the code or the credential is dated in the future beyond the leeway (the
  device's or the gate's clock is wrong);
- REVOKED: the card was reported lost, replaced or cancelled (its credential's reference
  is in its jurisdiction's revocation list), or the credential says so;
- REPLAYED: this gate (or another gate of its operator whose records it has) admitted
  this very code already;
- NOT_ELIGIBLE: the benefit rule of this gate does not admit this holder;
- STALE: the gate has not synced for longer than the deployment allows, or holds no
  revocation list of the card's jurisdiction, or only one older than that, and its policy
  is to refuse (with the policy "admit and flag" the code is admitted, flagged).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

from tongban.card import codec
from tongban.card.codec import Credential, DeviceAlg, Malformed
from tongban.card.devicekeys import BadDeviceKey, DeviceVerifier
from tongban.card.domain import AGE_BAND_LABELS, AgeBand, CardStatus, concession_labels
from tongban.crypto.signing import PublicKey


class Refusal(StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_ISSUER = "unknown_issuer"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    CLOCK_SKEW = "clock_skew"
    REVOKED = "revoked"
    REPLAYED = "replayed"
    NOT_ELIGIBLE = "not_eligible"
    STALE = "stale"


REFUSAL_LABELS = {
    Refusal.MALFORMED: "无法识别的码",
    Refusal.UNKNOWN_ISSUER: "签发方不受信任",
    Refusal.BAD_SIGNATURE: "签名无效（伪造或被篡改）",
    Refusal.EXPIRED: "码已过期，请刷新",
    Refusal.CLOCK_SKEW: "时间不一致，请校准手机时间",
    Refusal.REVOKED: "卡已挂失、补换或注销",
    Refusal.REPLAYED: "此码已使用，请刷新后重试",
    Refusal.NOT_ELIGIBLE: "不符合本处通行或优待条件",
    Refusal.STALE: "本设备长时间未同步，暂停核验",
}

StalePolicy = Literal["refuse", "admit_and_flag"]


@dataclass(frozen=True, slots=True)
class IssuerKey:
    """A trusted issuing key: its jurisdiction, kid, public key and validity window
    (from the verified trust list)."""

    jurisdiction: str
    kid: str
    public: PublicKey
    nbf: int
    exp: int | None
    revoked: bool = False

    def usable_at(self, at: int) -> bool:
        return not self.revoked and self.nbf <= at and (self.exp is None or at < self.exp)


def kid8(kid: str) -> bytes:
    """The 8 bytes a credential carries for a key id (an RFC 7638 thumbprint)."""
    from tongban.crypto.signing import b64u_decode

    return b64u_decode(kid)[:8]


def index_keys(keys: Iterable[IssuerKey]) -> dict[tuple[str, bytes], IssuerKey]:
    return {(k.jurisdiction, kid8(k.kid)): k for k in keys}


@dataclass(frozen=True, slots=True)
class HolderFacts:
    """All a gate learns of a holder from a code: no name, no ID number, no card number."""

    jurisdiction: str
    city: str
    age_band: AgeBand
    concessions: int
    transport: bool
    generation: int
    #: The credential's pseudonymous reference, hex.
    ref: str

    def describe(self) -> str:
        """In Chinese, for the gate's screen: age band and categories."""
        parts = [AGE_BAND_LABELS[self.age_band], *concession_labels(self.concessions)]
        return "，".join(parts)


@dataclass(frozen=True, slots=True)
class Decision:
    """What a benefit rule says of a holder at this gate."""

    eligible: bool
    #: The rule that decided (an id of the rules data), recorded with the use.
    rule: str
    #: The benefit in Chinese (免费, 半价, 凭卡入馆 …) and why it applies.
    benefit: str
    why: str


class Rules(Protocol):
    def decide(self, holder: HolderFacts, at: int) -> Decision: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """A gate's answer: admitted or refused, why, and the benefit applied."""

    admitted: bool
    reason: Refusal | None
    detail: str
    holder: HolderFacts | None = None
    decision: Decision | None = None
    #: Admitted although the gate's sync is stale (policy "admit and flag").
    flagged: bool = False
    #: The code's time (Unix seconds), when it could be read.
    code_time: int | None = None

    @property
    def message(self) -> str:
        """The sentence the gate shows, in Chinese."""
        if self.admitted:
            benefit = self.decision.benefit if self.decision else "通行"
            flag = "（同步超时，已标记）" if self.flagged else ""
            return f"通过：{benefit}{flag}"
        assert self.reason is not None
        return f"未通过：{REFUSAL_LABELS[self.reason]}"


def refused(reason: Refusal, detail: str, **kw: object) -> Verdict:
    return Verdict(False, reason, detail, **kw)  # type: ignore[arg-type]


class ReplayStore(Protocol):
    """Codes already admitted, per gate (or per operator, once gates' records meet)."""

    def seen(self, ref: bytes, time: int) -> bool: ...

    def remember(self, ref: bytes, time: int, now: int) -> None: ...


class MemoryReplay:
    """A replay store in memory, forgetting codes older than `horizon` seconds."""

    def __init__(self, horizon: int = 600) -> None:
        self.horizon = horizon
        self._seen: dict[tuple[bytes, int], int] = {}
        self._lock = threading.Lock()

    def seen(self, ref: bytes, time: int) -> bool:
        with self._lock:
            return (ref, time) in self._seen

    def remember(self, ref: bytes, time: int, now: int) -> None:
        with self._lock:
            self._seen[(ref, time)] = now
            if len(self._seen) > 10_000:
                cutoff = now - self.horizon
                self._seen = {k: v for k, v in self._seen.items() if k[1] >= cutoff}


@dataclass
class Policy:
    """What a deployment allows (seconds)."""

    #: How old a code may be (the page refreshes every 30 s).
    window: int = 90
    #: How far in the future a code or credential may be dated.
    leeway: int = 30
    #: How long a gate may go without a sync before its stale policy applies.
    max_stale: int = 24 * 3600
    stale_policy: StalePolicy = "refuse"


@dataclass
class Verifier:
    """Verifies codes against one sync's keys and revocation lists."""

    keys: Mapping[tuple[str, bytes], IssuerKey]
    #: Revoked references per jurisdiction. A jurisdiction without a list is treated as
    #: stale: the gate cannot know which of its cards are lost.
    revoked: Mapping[str, frozenset[bytes]]
    synced_at: int
    policy: Policy = field(default_factory=Policy)
    replay: ReplayStore = field(default_factory=MemoryReplay)
    rules: Rules | None = None
    #: When each jurisdiction's revocation list was signed (default: the sync time): a
    #: list older than the policy's max_stale is stale too (its node stopped publishing).
    lists_iat: Mapping[str, int] = field(default_factory=dict)
    #: Device keys already parsed (a holder shows the same credential all day).
    _devices: dict[bytes, DeviceVerifier] = field(default_factory=dict, repr=False)

    def _device(self, cred: Credential) -> DeviceVerifier:
        found = self._devices.get(cred.device_key)
        if found is None:
            found = DeviceVerifier(cred.device_alg, cred.device_key)
            if len(self._devices) > 50_000:
                self._devices.clear()
            self._devices[cred.device_key] = found
        return found

    def _stale(self, jurisdiction: str, now: int) -> str | None:
        """Why what the gate knows of `jurisdiction`'s cards is too old, or None."""
        limit = self.policy.max_stale
        if now - self.synced_at > limit:
            return f"last sync {self.synced_at}"
        if jurisdiction not in self.revoked:
            return f"no revocation list of {jurisdiction}"
        signed = self.lists_iat.get(jurisdiction, self.synced_at)
        if now - signed > limit:
            return f"revocation list of {jurisdiction} signed at {signed}"
        return None

    def check(
        self, scanned: bytes | str, now: int, *, record: bool = True, replays: bool = True
    ) -> Verdict:
        """The verdict on a scanned code (its QR text, or its bytes) at time `now`.
        With `record` an admitted code is remembered, so showing it again is a replay;
        without `replays` the replay store is not asked (the caller settles replays
        itself, atomically with recording the admission: gate.Gate)."""
        try:
            data = codec.from_qr_text(scanned) if isinstance(scanned, str) else bytes(scanned)
            code = codec.decode_code(data)
        except Malformed as e:
            return refused(Refusal.MALFORMED, str(e))
        cred = code.credential
        key = self.keys.get((cred.jurisdiction, cred.kid8))
        if key is None or codec.ISSUER_ALG_NAMES[cred.issuer_alg] != key.public.alg.value:
            return refused(
                Refusal.UNKNOWN_ISSUER, f"no key {cred.kid8.hex()} of {cred.jurisdiction}"
            )
        # What the issuer signed is the credential's bytes as received (decoding them is
        # strict, so they are what `cred.signing_input()` would pack again).
        signed = codec.CREDENTIAL_PREFIX + code.credential_bytes[: -codec.SIGNATURE_LEN]
        if not key.public.verify(signed, cred.signature):
            return refused(Refusal.BAD_SIGNATURE, "issuer signature")
        if not key.usable_at(cred.iat):
            return refused(Refusal.UNKNOWN_ISSUER, f"key {key.kid} not valid at {cred.iat}")
        try:
            device = self._device(cred)
        except BadDeviceKey as e:
            return refused(Refusal.MALFORMED, f"device key: {e}")
        if not device.verify(code.signing_input(), code.signature):
            return refused(Refusal.BAD_SIGNATURE, "device signature", code_time=code.time)
        policy = self.policy
        if cred.iat > now + policy.leeway or code.time > now + policy.leeway:
            return refused(Refusal.CLOCK_SKEW, f"dated {code.time}, now {now}", code_time=code.time)
        if cred.exp <= now:
            return refused(Refusal.EXPIRED, f"credential expired at {cred.exp}")
        if code.time < now - policy.window or code.time < cred.iat - policy.leeway:
            return refused(Refusal.EXPIRED, f"code made at {code.time}", code_time=code.time)
        holder = HolderFacts(
            cred.jurisdiction,
            cred.city,
            cred.age_band,
            cred.concessions,
            cred.transport,
            cred.generation,
            cred.ref.hex(),
        )
        if cred.status is not CardStatus.NORMAL or cred.ref in self.revoked.get(
            cred.jurisdiction, frozenset()
        ):
            return refused(Refusal.REVOKED, f"card {cred.ref.hex()}", holder=holder)
        flagged = False
        stale = self._stale(cred.jurisdiction, now)
        if stale:
            if policy.stale_policy == "refuse":
                return refused(Refusal.STALE, stale, holder=holder)
            flagged = True
        if replays and self.replay.seen(cred.ref, code.time):
            return refused(Refusal.REPLAYED, "seen before", holder=holder, code_time=code.time)
        decision = self.rules.decide(holder, now) if self.rules is not None else None
        if decision is not None and not decision.eligible:
            return refused(Refusal.NOT_ELIGIBLE, decision.why, holder=holder, decision=decision)
        if record:
            self.replay.remember(cred.ref, code.time, now)
        return Verdict(True, None, "ok", holder, decision, flagged, code.time)


def device_alg_name(alg: DeviceAlg) -> str:
    return codec.DEVICE_ALG_NAMES[alg]


Clock = Callable[[], int]
