"""The code's format and its offline verification, without a database: a code made by the
reference device is admitted; each way a code can be wrong is refused with its own
reason; the format refuses what it cannot be before reading a field."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tongban.card import codec
from tongban.card.codec import Malformed
from tongban.card.device import DeviceError
from tongban.card.domain import AgeBand, CardStatus
from tongban.card.verifier import Decision, HolderFacts, Policy, Refusal
from unit.card.kit import NOW, enrolled, issuer, issuer_key, verifier


@pytest.mark.parametrize(
    ("issuer_alg", "device_alg"),
    [("EdDSA", "ES256"), ("SM2", "EdDSA"), ("SM2", "ES256"), ("EdDSA", "EdDSA")],
)
def test_a_fresh_code_is_admitted_in_both_suites(issuer_alg: str, device_alg: str) -> None:
    key = issuer(issuer_alg)
    device = enrolled(key, device_alg)
    text = device.qr_text(NOW - 5)
    assert text.startswith("TBC1:") and len(text) <= 310
    verdict = verifier(issuer_key(key)).check(text, NOW)
    assert verdict.admitted, verdict
    assert verdict.holder is not None and verdict.holder.age_band is AgeBand.AGE_70_PLUS
    assert verdict.holder.jurisdiction == "320000" and verdict.holder.city == "320100"
    assert verdict.message == "通过：通行"
    # The same verdict from the bytes.
    assert verifier(issuer_key(key)).check(device.code(NOW - 5), NOW).admitted


def test_sizes_are_as_documented() -> None:
    key = issuer()
    assert len(enrolled(key, "EdDSA").code(NOW)) == 200
    assert len(enrolled(key, "ES256").code(NOW)) == 201
    assert len(enrolled(key, "EdDSA").qr_text(NOW)) == 305
    assert len(enrolled(key, "ES256").qr_text(NOW)) == 307


def test_a_code_shown_twice_at_one_gate_is_a_replay() -> None:
    key = issuer()
    gate = verifier(issuer_key(key))
    device = enrolled(key)
    text = device.qr_text(NOW)
    assert gate.check(text, NOW).admitted
    again = gate.check(text, NOW + 1)
    assert again.reason is Refusal.REPLAYED and again.message.endswith("此码已使用，请刷新后重试")
    # The next code of the same device is a new code.
    assert gate.check(device.qr_text(NOW + 30), NOW + 31).admitted
    # Checking without recording (a preview) does not burn it.
    other = enrolled(key).qr_text(NOW)
    assert gate.check(other, NOW, record=False).admitted and gate.check(other, NOW).admitted


def test_each_refusal_has_its_own_reason() -> None:
    key, stranger = issuer(), issuer()
    gate = verifier(issuer_key(key))
    fine = enrolled(key)
    cases = {
        "garbage": ("TBC1:%%%", Refusal.MALFORMED),
        "not ours": ("HC1:NCFOXN%TS3DH", Refusal.MALFORMED),
        "empty": ("", Refusal.MALFORMED),
        "unknown issuer": (enrolled(stranger).qr_text(NOW), Refusal.UNKNOWN_ISSUER),
        "expired credential": (
            enrolled(key, iat=NOW - 30 * 3600).qr_text(NOW),
            Refusal.EXPIRED,
        ),
        "old code": (fine.qr_text(NOW - 600), Refusal.EXPIRED),
        "future code": (fine.qr_text(NOW + 600), Refusal.CLOCK_SKEW),
        "future credential": (
            enrolled(key, iat=NOW + 3600).qr_text(NOW + 3600),
            Refusal.CLOCK_SKEW,
        ),
        "lost card in the credential": (
            enrolled(key, status=CardStatus.LOST).qr_text(NOW),
            Refusal.REVOKED,
        ),
    }
    for name, (text, reason) in cases.items():
        verdict = gate.check(text, NOW)
        assert not verdict.admitted and verdict.reason is reason, (name, verdict)
        assert verdict.message.startswith("未通过：")


def test_another_devices_signature_or_altered_bytes_are_bad_signatures() -> None:
    key = issuer()
    gate = verifier(issuer_key(key))
    device, thief = enrolled(key), enrolled(key)
    # The thief signs a code with their own key over the victim's credential.
    thief.credential = device.credential
    with pytest.raises(DeviceError):
        thief.code(NOW)  # the reference device refuses a credential of another key
    forged = (
        device.credential
        + NOW.to_bytes(4, "big")
        + thief.sign(codec.code_signing_input(device.credential or b"", NOW))
    )
    assert gate.check(forged, NOW).reason is Refusal.BAD_SIGNATURE
    # One bit of the credential changed (the age band): the issuer's signature fails.
    code = bytearray(device.code(NOW))
    code[24] = int(AgeBand.AGE_65_69)
    assert gate.check(bytes(code), NOW).reason is Refusal.BAD_SIGNATURE
    # The time changed after signing: the device's signature fails.
    code = bytearray(device.code(NOW))
    n = len(device.credential or b"")
    code[n : n + 4] = (NOW - 1).to_bytes(4, "big")
    assert gate.check(bytes(code), NOW).reason is Refusal.BAD_SIGNATURE


def test_a_revoked_reference_is_refused_after_sync() -> None:
    key = issuer()
    device = enrolled(key, ref=b"\x01" * 8)
    before = verifier(issuer_key(key))
    assert before.check(device.qr_text(NOW), NOW).admitted
    after = verifier(issuer_key(key), revoked={"320000": frozenset({b"\x01" * 8})})
    verdict = after.check(device.qr_text(NOW + 1), NOW + 1)
    assert verdict.reason is Refusal.REVOKED and "挂失" in verdict.message
    # Another jurisdiction's list does not revoke it.
    other = verifier(
        issuer_key(key), revoked={"320000": frozenset(), "330000": frozenset({b"\x01" * 8})}
    )
    assert other.check(device.qr_text(NOW + 2), NOW + 2).admitted


def test_without_a_fresh_revocation_list_of_the_cards_jurisdiction_the_gate_is_stale() -> None:
    key = issuer()
    device = enrolled(key)
    missing = verifier(issuer_key(key), revoked={"330000": frozenset()})
    verdict = missing.check(device.qr_text(NOW), NOW)
    assert verdict.reason is Refusal.STALE and "no revocation list of 320000" in verdict.detail
    old = verifier(
        issuer_key(key),
        revoked={"320000": frozenset()},
        lists_iat={"320000": NOW - 3 * 24 * 3600},
    )
    assert old.check(device.qr_text(NOW), NOW).reason is Refusal.STALE
    lenient = verifier(
        issuer_key(key),
        revoked={"330000": frozenset()},
        policy=Policy(stale_policy="admit_and_flag"),
    )
    assert lenient.check(device.qr_text(NOW), NOW).flagged


def test_a_key_outside_its_window_or_revoked_is_an_unknown_issuer() -> None:
    key = issuer()
    device = enrolled(key, iat=NOW - 100)
    for entry in (
        issuer_key(key, nbf=NOW),  # not valid yet when the credential was issued
        issuer_key(key, exp=NOW - 200),  # rotated before
        issuer_key(key, revoked=True),
        issuer_key(key, jurisdiction="330000"),  # the key of another jurisdiction
    ):
        assert verifier(entry).check(device.qr_text(NOW), NOW).reason is Refusal.UNKNOWN_ISSUER


def test_a_stale_gate_refuses_or_admits_and_flags_by_policy() -> None:
    key = issuer()
    device = enrolled(key)
    old = NOW - 2 * 24 * 3600
    refuse = verifier(issuer_key(key), synced_at=old)
    assert refuse.check(device.qr_text(NOW), NOW).reason is Refusal.STALE
    lenient = verifier(issuer_key(key), synced_at=old, policy=Policy(stale_policy="admit_and_flag"))
    verdict = lenient.check(device.qr_text(NOW), NOW)
    assert verdict.admitted and verdict.flagged and "已标记" in verdict.message


class SeniorsOnly:
    def decide(self, holder: HolderFacts, at: int) -> Decision:
        if holder.age_band >= AgeBand.AGE_65_69:
            return Decision(True, "test:senior", "免费", "65周岁以上免费")
        return Decision(False, "test:senior", "", "仅限65周岁以上")


def test_a_rule_that_does_not_admit_the_holder_is_not_eligible() -> None:
    key = issuer()
    gate = verifier(issuer_key(key), rules=SeniorsOnly())
    senior = gate.check(enrolled(key).qr_text(NOW), NOW)
    assert senior.admitted and senior.decision is not None and senior.message == "通过：免费"
    young = gate.check(enrolled(key, age_band=AgeBand.AGE_18_59).qr_text(NOW), NOW)
    assert young.reason is Refusal.NOT_ELIGIBLE and young.detail == "仅限65周岁以上"


# --- the format ----------------------------------------------------------------------------


def test_credentials_round_trip_and_refuse_what_they_cannot_be() -> None:
    key = issuer()
    device = enrolled(key, "EdDSA", concessions=5)
    raw = device.credential or b""
    cred = codec.decode_credential(raw)
    assert cred.to_bytes() == raw and cred.concessions == 5
    broken = {
        "length": raw[:-1],
        "version": b"\x00" + raw[1:],
        "suites": raw[:1] + b"\x33" + raw[2:],
        "region": raw[:2] + (999999).to_bytes(3, "big") + raw[5:],
        "city elsewhere": raw[:5] + (330100).to_bytes(3, "big") + raw[8:],
        "age band": raw[:24] + b"\x09" + raw[25:],
        "concessions": raw[:25] + b"\x80" + raw[26:],
        "status": raw[:26] + b"\x07" + raw[27:],
        "flags": raw[:27] + b"\x32" + raw[28:],
        "times": raw[:28] + raw[32:36] + raw[28:32] + raw[36:],
    }
    for name, data in broken.items():
        with pytest.raises(Malformed):
            codec.decode_credential(data)
            pytest.fail(f"{name} was read")


def test_a_p256_device_key_must_be_a_compressed_point() -> None:
    key = issuer()
    raw = bytearray(enrolled(key, "ES256").credential or b"")
    raw[36] = 4
    with pytest.raises(Malformed):
        codec.decode_credential(bytes(raw))


def test_base45_follows_rfc_9285() -> None:
    # The examples of RFC 9285 §4.3 and §4.4.
    assert codec.b45encode(b"AB") == "BB8"
    assert codec.b45encode(b"Hello!!") == "%69 VD92EX0"
    assert codec.b45encode(b"base-45") == "UJCLQE7W581"
    assert codec.b45decode("QED8WEX0") == b"ietf!"
    for bad in ("GGW", "ZZZZ", "A", "aaa"):
        with pytest.raises(ValueError):
            codec.b45decode(bad)


def test_revocation_lists_round_trip_sorted_and_unique() -> None:
    key = issuer()
    lst = codec.RevocationList(
        codec.IssuerAlg.ED25519, "320000", b"k" * 8, NOW, NOW + 86400, 3, (b"\x01" * 8, b"\x02" * 8)
    )
    signed = replace(lst, signature=key.sign(lst.signing_input()))
    data = signed.to_bytes()
    assert len(data) == codec.REV_HEAD_LEN + 16 + 64
    back = codec.decode_revocations(data)
    assert back == signed and key.public().verify(back.signing_input(), back.signature)
    unsorted = replace(lst, refs=(b"\x02" * 8, b"\x01" * 8), signature=b"s" * 64).to_bytes()
    with pytest.raises(Malformed):
        codec.decode_revocations(unsorted)
    with pytest.raises(Malformed):
        codec.decode_revocations(data[:-1])
