"""verify_licence: a valid presentation passes; every hostile input is rejected with its
own reason. Runs for Ed25519 and SM2 issuers."""

from __future__ import annotations

import json

import pytest

from licence_kit import (
    AH,
    DAY,
    DISCLOSABLE,
    JS,
    NOW,
    SHOWN,
    VCT,
    ZJ,
    Federation,
    driving_claims,
    enc,
    forge_jwt,
)
from tongban.crypto.signing import b64u_decode, generate
from tongban.licences.rejection import REASON_TEXT, LicenceRejected, RejectReason
from tongban.licences.sdjwt import issue_sd_jwt, make_disclosure, present
from tongban.licences.statuslist import LocalStatuses
from tongban.licences.verify import verify_licence

R = RejectReason


def rejected(fed: Federation, compact: str, *, statuses: object = "default", now: int = NOW):
    src = fed.statuses if statuses == "default" else statuses
    with pytest.raises(LicenceRejected) as info:
        verify_licence(compact, fed.trust, src, now=now)  # type: ignore[arg-type]
    return info.value.reason


def split(compact: str) -> tuple[list[str], list[str]]:
    jwt, *rest = compact.split("~")
    return jwt.split("."), rest[:-1]


def join(parts: list[str], disclosures: list[str]) -> str:
    return ".".join(parts) + "~" + "".join(d + "~" for d in disclosures)


# --- the good path --------------------------------------------------------------------


def test_presentation_verifies_with_only_the_disclosed_claims(fed: Federation) -> None:
    full = driving_claims(JS)
    v = verify_licence(fed.presentation(), fed.trust, fed.statuses, now=NOW)
    assert (v.issuer, v.jurisdiction, v.kid, v.vct) == (JS, "320000", fed.keys[JS].kid, VCT)
    assert v.licence_id == full["licence_id"]
    assert (v.iat, v.nbf, v.exp, v.status) == (full["iat"], full["nbf"], full["exp"], 0)
    plain = {"iss", "iat", "nbf", "exp", "vct", "licence_id"}
    assert v.claims == {k: full[k] for k in plain | set(SHOWN)}
    assert set(v.disclosed) == set(SHOWN)
    for hidden in set(DISCLOSABLE) - set(SHOWN):
        assert hidden not in v.claims


def test_full_licence_and_empty_presentation(fed: Federation) -> None:
    full = fed.issue()
    assert set(verify_licence(full, fed.trust, fed.statuses, now=NOW).claims) >= set(DISCLOSABLE)
    bare = present(full, [])
    assert bare.count("~") == 1
    claims = verify_licence(bare, fed.trust, fed.statuses, now=NOW).claims
    assert not set(claims) & set(DISCLOSABLE)


def test_technical_claims_are_not_in_claims(fed: Federation) -> None:
    compact = fed.issue(cnf={"jwk": fed.keys[ZJ].public().jwk()})
    claims = verify_licence(compact, fed.trust, fed.statuses, now=NOW).claims
    assert not {"_sd", "_sd_alg", "cnf", "status"} & set(claims)


def test_offline_check_skips_status(fed: Federation) -> None:
    revoked = fed.presentation(idx=7)
    assert verify_licence(revoked, fed.trust, None, now=NOW).status == -1


def test_licence_without_status_claim_is_unchecked(fed: Federation) -> None:
    compact = fed.issue(status=None)
    assert verify_licence(compact, fed.trust, fed.statuses, now=NOW).status == -1


def test_licence_without_exp_never_expires(fed: Federation) -> None:
    compact = fed.issue(exp=None)
    v = verify_licence(compact, fed.trust, fed.statuses, now=NOW + 80 * 365 * DAY)
    assert v.exp is None


def test_leeway_applies_at_both_ends(fed: Federation) -> None:
    assert verify_licence(fed.issue(exp=NOW - 30), fed.trust, None, now=NOW).exp == NOW - 30
    assert verify_licence(fed.issue(nbf=NOW + 30), fed.trust, None, now=NOW).nbf == NOW + 30
    assert rejected(fed, fed.issue(exp=NOW - 30), now=NOW + 31) is R.EXPIRED


# --- tampering ------------------------------------------------------------------------


def test_altered_payload_is_bad_signature(fed: Federation) -> None:
    parts, disclosures = split(fed.presentation())
    payload = json.loads(b64u_decode(parts[1]))
    payload["exp"] += 10 * 365 * DAY
    assert rejected(fed, join([parts[0], enc(payload), parts[2]], disclosures)) is R.BAD_SIGNATURE


def test_altered_disclosure_is_tampered(fed: Federation) -> None:
    parts, disclosures = split(fed.presentation())
    salt, name, _ = json.loads(b64u_decode(disclosures[0]))
    disclosures[0] = enc([salt, name, "A2"])
    assert rejected(fed, join(parts, disclosures)) is R.TAMPERED_DISCLOSURE


def test_disclosure_from_another_licence_is_tampered(fed: Federation) -> None:
    parts, disclosures = split(fed.presentation(shown=("name",)))
    _, other = split(fed.presentation(shown=("licence_class",), licence_class="A1"))
    assert rejected(fed, join(parts, disclosures + other)) is R.TAMPERED_DISCLOSURE


def test_repeated_disclosure_is_tampered(fed: Federation) -> None:
    parts, disclosures = split(fed.presentation())
    assert rejected(fed, join(parts, disclosures + disclosures[:1])) is R.TAMPERED_DISCLOSURE


def test_disclosure_clashing_with_plain_claim_is_tampered(fed: Federation) -> None:
    d = make_disclosure("licence_class", "A1")
    claims = driving_claims(JS)
    payload = {k: v for k, v in claims.items() if k not in DISCLOSABLE}
    payload.update(licence_class="C1", _sd=[d.digest], _sd_alg="sha-256")
    jwt = forge_jwt(
        {"alg": fed.alg.value, "kid": fed.keys[JS].kid, "typ": "dc+sd-jwt"}, payload, fed.keys[JS]
    )
    assert rejected(fed, jwt + "~" + d.encoded + "~") is R.TAMPERED_DISCLOSURE


def test_swapped_signature_is_bad_signature(fed: Federation) -> None:
    parts, disclosures = split(fed.presentation())
    other, _ = split(fed.presentation(name="李雷"))
    assert rejected(fed, join(parts[:2] + other[2:], disclosures)) is R.BAD_SIGNATURE


def test_kid_of_one_issuer_signature_of_another(fed: Federation) -> None:
    header = {"alg": fed.alg.value, "kid": fed.keys[JS].kid, "typ": "dc+sd-jwt"}
    jwt = forge_jwt(header, driving_claims(JS), fed.keys[ZJ])
    assert rejected(fed, jwt + "~") is R.BAD_SIGNATURE


def test_issuer_not_in_trust_list(fed: Federation) -> None:
    stranger = generate(fed.alg)
    compact = issue_sd_jwt(driving_claims("https://evil.example"), DISCLOSABLE, stranger)
    assert rejected(fed, compact) is R.UNKNOWN_ISSUER


def test_unknown_kid_for_known_issuer(fed: Federation) -> None:
    assert rejected(fed, fed.issue(JS, key=generate(fed.alg))) is R.UNKNOWN_ISSUER


def test_key_of_another_issuer_is_unknown_for_this_iss(fed: Federation) -> None:
    assert rejected(fed, fed.issue(JS, key=fed.keys[ZJ])) is R.UNKNOWN_ISSUER


def test_header_alg_not_matching_key_is_bad_signature(fed: Federation) -> None:
    other_alg = "SM2" if fed.alg.value == "EdDSA" else "EdDSA"
    header = {"alg": other_alg, "kid": fed.keys[JS].kid, "typ": "dc+sd-jwt"}
    assert (
        rejected(fed, forge_jwt(header, driving_claims(JS), fed.keys[JS]) + "~") is R.BAD_SIGNATURE
    )


# --- validity in time and key rotation ------------------------------------------------


def test_expired(fed: Federation) -> None:
    assert rejected(fed, fed.presentation(exp=NOW - DAY)) is R.EXPIRED


def test_not_yet_valid(fed: Federation) -> None:
    assert rejected(fed, fed.presentation(nbf=NOW + DAY)) is R.NOT_YET_VALID


def test_issued_in_the_future(fed: Federation) -> None:
    compact = fed.presentation(iat=NOW + DAY, nbf=None)
    assert rejected(fed, compact) is R.NOT_YET_VALID


def test_rotated_key_still_verifies_its_licences(fed: Federation) -> None:
    old = fed.issue(AH, key=fed.ah_old, iat=NOW - 30 * DAY)
    assert verify_licence(old, fed.trust, fed.statuses, now=NOW).kid == fed.ah_old.kid
    new = fed.issue(AH, iat=NOW - DAY)
    assert verify_licence(new, fed.trust, fed.statuses, now=NOW).kid == fed.keys[AH].kid
    # the retired key signs nothing after its exp, and the new one nothing before its nbf
    assert rejected(fed, fed.issue(AH, key=fed.ah_old, iat=NOW - DAY)) is R.UNKNOWN_ISSUER
    assert rejected(fed, fed.issue(AH, iat=NOW - 30 * DAY)) is R.UNKNOWN_ISSUER


def test_withdrawn_key(fed: Federation) -> None:
    before = fed.issue(AH, key=fed.ah_withdrawn, iat=NOW - 30 * DAY)
    assert verify_licence(before, fed.trust, fed.statuses, now=NOW).iat == NOW - 30 * DAY
    after = fed.issue(AH, key=fed.ah_withdrawn, iat=NOW - 19 * DAY)
    assert rejected(fed, after) is R.UNKNOWN_ISSUER


# --- status ---------------------------------------------------------------------------


@pytest.mark.parametrize(("idx", "reason"), [(7, R.REVOKED), (8, R.SUSPENDED), (9, R.REVOKED)])
def test_status(fed: Federation, idx: int, reason: RejectReason) -> None:
    assert rejected(fed, fed.presentation(idx=idx)) is reason


def test_status_unavailable(fed: Federation) -> None:
    assert rejected(fed, fed.presentation(idx=5), statuses=LocalStatuses()) is R.STATUS_UNAVAILABLE
    assert rejected(fed, fed.presentation(idx=10**6)) is R.STATUS_UNAVAILABLE


def test_status_source_is_asked_for_the_reference(fed: Federation) -> None:
    asked = []

    class Recorder:
        def status_of(self, uri: str, idx: int) -> int:
            asked.append((uri, idx))
            return 0

    verify_licence(fed.presentation(idx=42), fed.trust, Recorder(), now=NOW)
    assert asked == [(JS + "/status/1", 42)]


# --- malformed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "~",
        "~~",
        "abc",
        "a.b.c~",
        "..~",
        "eyJ.eyJ.sig~",
        "中文~",
        "a.b.c.d.e~",
        "\x00\x01~",
        "." * 10000 + "~",
    ],
)
def test_garbage(fed: Federation, garbage: str) -> None:
    assert rejected(fed, garbage) is R.MALFORMED


def test_not_a_string(fed: Federation) -> None:
    assert rejected(fed, None) is R.MALFORMED  # type: ignore[arg-type]
    assert rejected(fed, b"a.b.c~") is R.MALFORMED  # type: ignore[arg-type]


@pytest.mark.parametrize("alg", ["none", "None", "HS256", "RS256", "ES256", "", None])
def test_refused_algs(fed: Federation, alg: str | None) -> None:
    parts, disclosures = split(fed.presentation())
    header = {"alg": alg, "kid": fed.keys[JS].kid, "typ": "dc+sd-jwt"}
    assert rejected(fed, join([enc(header), parts[1], parts[2]], disclosures)) is R.MALFORMED
    assert rejected(fed, join([enc(header), parts[1], ""], disclosures)) is R.MALFORMED


def test_missing_alg(fed: Federation) -> None:
    parts, disclosures = split(fed.presentation())
    header = {"kid": fed.keys[JS].kid, "typ": "dc+sd-jwt"}
    assert rejected(fed, join([enc(header), *parts[1:]], disclosures)) is R.MALFORMED


@pytest.mark.parametrize("count", [1, 2, 4, 5])
def test_wrong_part_count(fed: Federation, count: int) -> None:
    parts, disclosures = split(fed.presentation())
    parts = (parts * 2)[:count]
    assert rejected(fed, join(parts, disclosures)) is R.MALFORMED


def test_key_binding_jwt_on_an_unbound_licence_is_refused(fed: Federation) -> None:
    # a KB-JWT is never ignored: without a cnf there is no key to check it against
    compact = fed.presentation()
    kb = forge_jwt({"alg": "EdDSA", "typ": "kb+jwt"}, {"nonce": "n"}, generate())
    assert rejected(fed, compact + kb) is R.NOT_HOLDER_BOUND
    assert rejected(fed, compact[:-1]) is R.MALFORMED  # final '~' missing


@pytest.mark.parametrize("missing", ["iss", "iat", "vct"])
def test_required_claims(fed: Federation, missing: str) -> None:
    claims = driving_claims(JS)
    claims[missing] = None
    claims = {k: v for k, v in claims.items() if v is not None}
    compact = issue_sd_jwt(claims, DISCLOSABLE, fed.keys[JS])
    assert rejected(fed, compact) is R.MALFORMED


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("iat", "yesterday"),
        ("iat", True),
        ("exp", 1.5),
        ("nbf", "now"),
        ("vct", 3),
        ("status", {"status_list": {"idx": -1, "uri": "u"}}),
        ("status", {"status_list": {"idx": 1}}),
        ("status", {"other": 1}),
        ("status", "revoked"),
    ],
)
def test_badly_typed_claims(fed: Federation, claim: str, value: object) -> None:
    claims = driving_claims(JS)
    claims[claim] = value
    assert rejected(fed, issue_sd_jwt(claims, DISCLOSABLE, fed.keys[JS])) is R.MALFORMED


def test_wrong_typ(fed: Federation) -> None:
    compact = issue_sd_jwt(driving_claims(JS), DISCLOSABLE, fed.keys[JS], typ="JWT")
    assert rejected(fed, compact) is R.MALFORMED
    vc = issue_sd_jwt(driving_claims(JS), DISCLOSABLE, fed.keys[JS], typ="vc+sd-jwt")
    assert verify_licence(vc, fed.trust, fed.statuses, now=NOW).vct == VCT


def test_disclosed_registered_claim_is_refused(fed: Federation) -> None:
    d = make_disclosure("exp", NOW + 100 * 365 * DAY)
    payload = {k: v for k, v in driving_claims(JS).items() if k != "exp"}
    payload.update(_sd=[d.digest], _sd_alg="sha-256")
    jwt = forge_jwt(
        {"alg": fed.alg.value, "kid": fed.keys[JS].kid, "typ": "dc+sd-jwt"}, payload, fed.keys[JS]
    )
    assert rejected(fed, jwt + "~" + d.encoded + "~") is R.MALFORMED


def test_non_canonical_base64_is_malformed(fed: Federation) -> None:
    parts, disclosures = split(fed.presentation())
    assert rejected(fed, join([parts[0] + "=", *parts[1:]], disclosures)) is R.MALFORMED
    assert rejected(fed, join(parts, [disclosures[0] + "=="] + disclosures[1:])) is R.MALFORMED
    assert (
        rejected(fed, join([parts[0], parts[1][:-1] + "+", parts[2]], disclosures)) is R.MALFORMED
    )


def test_reasons_have_chinese_text() -> None:
    assert set(REASON_TEXT) == set(RejectReason)
    assert REASON_TEXT[R.REVOKED] == "已撤销"
    err = LicenceRejected(R.EXPIRED, "exp passed")
    assert (err.reason, err.detail, err.text) == (R.EXPIRED, "exp passed", "已过期")
