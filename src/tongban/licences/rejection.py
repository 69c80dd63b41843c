"""Why a licence, status list or trust list is not accepted: the reasons, their text for
people, and the one exception that carries them. Every module that parses or checks a
licence raises it (jws, sdjwt, keybinding, trustlist, statuslist, verify), so it stands
apart from all of them."""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_ISSUER = "unknown_issuer"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    TAMPERED_DISCLOSURE = "tampered_disclosure"
    MALFORMED = "malformed"
    STATUS_UNAVAILABLE = "status_unavailable"
    KEY_BINDING_MISSING = "key_binding_missing"
    NOT_HOLDER_BOUND = "not_holder_bound"
    KEY_BINDING_BAD_SIGNATURE = "key_binding_bad_signature"
    KEY_BINDING_STALE = "key_binding_stale"
    KEY_BINDING_AUDIENCE_MISMATCH = "key_binding_audience_mismatch"
    KEY_BINDING_NONCE_MISMATCH = "key_binding_nonce_mismatch"
    KEY_BINDING_SD_HASH_MISMATCH = "key_binding_sd_hash_mismatch"


REASON_TEXT: dict[RejectReason, str] = {
    RejectReason.BAD_SIGNATURE: "签名无效",
    RejectReason.UNKNOWN_ISSUER: "未知签发方",
    RejectReason.EXPIRED: "已过期",
    RejectReason.NOT_YET_VALID: "尚未生效",
    RejectReason.REVOKED: "已撤销",
    RejectReason.SUSPENDED: "已暂停",
    RejectReason.TAMPERED_DISCLOSURE: "披露内容被篡改",
    RejectReason.MALFORMED: "格式错误",
    RejectReason.STATUS_UNAVAILABLE: "无法获取状态",
    RejectReason.KEY_BINDING_MISSING: "未附持有人绑定证明（不记名出示不被接受）",
    RejectReason.NOT_HOLDER_BOUND: "证照未绑定持有人设备，无法核验持有人",
    RejectReason.KEY_BINDING_BAD_SIGNATURE: "持有人绑定签名无效",
    RejectReason.KEY_BINDING_STALE: "持有人绑定已过时",
    RejectReason.KEY_BINDING_AUDIENCE_MISMATCH: "持有人绑定不是为本核验方生成的",
    RejectReason.KEY_BINDING_NONCE_MISMATCH: "持有人绑定的核验码不符",
    RejectReason.KEY_BINDING_SD_HASH_MISMATCH: "持有人绑定与出示内容不符",
}


class LicenceRejected(Exception):
    """A licence, status list or trust list that must not be accepted, and why.
    `detail` is English for logs; show `REASON_TEXT[reason]` (`.text`) to people."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail

    @property
    def text(self) -> str:
        return REASON_TEXT[self.reason]
