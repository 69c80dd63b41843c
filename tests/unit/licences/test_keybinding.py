"""Holder binding (SD-JWT KB-JWT over the `cnf` device key): a copied presentation is
refused by a verifier that requires binding, each kind of bad KB-JWT with its own
reason, and a correctly bound presentation verifies — for ES256 (the browser's P-256
key) and Ed25519 device keys, on Ed25519 and SM2 issuers."""

from __future__ import annotations

import pytest

from licence_kit import NOW, SHOWN, Federation
from tongban.crypto.signing import (
    KeyError_,
    P256PrivateKey,
    PrivateKey,
    b64u,
    generate,
    holder_key_from_jwk,
)
from tongban.licences.jws import dumps
from tongban.licences.keybinding import ANY_VERIFIER, BindingPolicy, bind, sd_hash
from tongban.licences.rejection import LicenceRejected, RejectReason
from tongban.licences.sdjwt import parse_sd_jwt, present
from tongban.licences.verification import BOUND, UNBOUND, check
from tongban.licences.verify import verify_licence

R = RejectReason
NONCE = "K7Q2M9XA"
REQUIRED = BindingPolicy(required=True, nonce=NONCE)


@pytest.fixture(params=["es256", "ed25519"])
def device(request: pytest.FixtureRequest) -> P256PrivateKey | PrivateKey:
    return P256PrivateKey.generate() if request.param == "es256" else generate()


def bound_licence(fed: Federation, device: P256PrivateKey | PrivateKey) -> str:
    """The stored licence (every disclosure) carrying the device key in cnf.jwk."""
    return fed.issue(cnf={"jwk": device.public().jwk()})


def shown(fed: Federation, device: P256PrivateKey | PrivateKey, **kw: object) -> str:
    """A presentation of SHOWN with a KB-JWT over NONCE, made now (or as `kw` says)."""
    args = {"nonce": NONCE, "iat": NOW - 5, "aud": ANY_VERIFIER, **kw}
    return bind(present(bound_licence(fed, device), SHOWN), device, **args)  # type: ignore[arg-type]


def reason(fed: Federation, compact: str, policy: BindingPolicy = REQUIRED) -> RejectReason:
    with pytest.raises(LicenceRejected) as info:
        verify_licence(compact, fed.trust, fed.statuses, now=NOW, binding=policy)
    return info.value.reason


def test_bound_presentation_verifies(fed: Federation, device: P256PrivateKey) -> None:
    v = verify_licence(shown(fed, device), fed.trust, fed.statuses, now=NOW, binding=REQUIRED)
    assert v.holder_bound is True
    assert set(v.disclosed) == set(SHOWN)
    assert "cnf" not in v.claims
    assert check(
        shown(fed, device), fed.trust, fed.statuses, now=NOW, binding=REQUIRED
    ).binding == (BOUND)


def test_copied_presentation_without_kb_is_refused_when_binding_required(
    fed: Federation, device: P256PrivateKey
) -> None:
    # what an onlooker copies from the QR code before the holder's device signs anything
    copied = present(bound_licence(fed, device), SHOWN)
    assert reason(fed, copied) is R.KEY_BINDING_MISSING
    # the same text where the deployment allows bearer presentation: valid, and says so
    v = verify_licence(copied, fed.trust, fed.statuses, now=NOW, binding=BindingPolicy())
    assert v.holder_bound is False
    answer = check(copied, fed.trust, fed.statuses, now=NOW, binding=BindingPolicy())
    assert answer.valid and answer.binding == UNBOUND
    assert answer.binding_text == "未核验持有人绑定（不记名出示）"
    refused = check(copied, fed.trust, fed.statuses, now=NOW, binding=REQUIRED)
    assert not refused.valid and refused.reason == "key_binding_missing"
    assert refused.licence_id  # the licence is genuine: which one is said


def test_unbound_licence_cannot_satisfy_a_verifier_requiring_binding(fed: Federation) -> None:
    assert reason(fed, fed.presentation()) is R.NOT_HOLDER_BOUND


def test_kb_over_another_nonce_is_refused(fed: Federation, device: P256PrivateKey) -> None:
    assert reason(fed, shown(fed, device, nonce="OTHER123")) is R.KEY_BINDING_NONCE_MISMATCH


def test_kb_by_another_key_is_refused(fed: Federation, device: P256PrivateKey) -> None:
    # the thief's own device signs a fresh KB-JWT over the right nonce
    thief = P256PrivateKey.generate()
    copied = present(bound_licence(fed, device), SHOWN)
    forged = bind(copied, thief, nonce=NONCE, iat=NOW)
    assert reason(fed, forged) is R.KEY_BINDING_BAD_SIGNATURE
    # an Ed25519 key claiming ES256, or the other way round: no algorithm confusion
    other = bind(
        copied, generate() if isinstance(device, P256PrivateKey) else thief, nonce=NONCE, iat=NOW
    )
    assert reason(fed, other) is R.KEY_BINDING_BAD_SIGNATURE


def test_kb_with_altered_claims_is_refused(fed: Federation, device: P256PrivateKey) -> None:
    good = shown(fed, device)
    head, payload, sig = good.rsplit("~", 1)[1].split(".")
    altered = dumps({"iat": NOW, "aud": ANY_VERIFIER, "nonce": "OTHER123", "sd_hash": "x"})
    tampered = good.rsplit("~", 1)[0] + "~" + ".".join([head, b64u(altered), sig])
    assert reason(fed, tampered) is R.KEY_BINDING_BAD_SIGNATURE


@pytest.mark.parametrize("age", [301, 3600, -120])
def test_stale_or_future_iat_is_refused(fed: Federation, device: P256PrivateKey, age: int) -> None:
    assert reason(fed, shown(fed, device, iat=NOW - age)) is R.KEY_BINDING_STALE


def test_time_window_mode_without_nonce(fed: Federation, device: P256PrivateKey) -> None:
    offline = BindingPolicy(required=True, nonce=None, window=300)
    fresh = shown(fed, device, nonce="made-up-by-the-wallet", iat=NOW - 290)
    assert verify_licence(fresh, fed.trust, fed.statuses, now=NOW, binding=offline).holder_bound
    late = shown(fed, device, nonce="made-up-by-the-wallet", iat=NOW - 310)
    assert reason(fed, late, offline) is R.KEY_BINDING_STALE


def test_kb_for_another_verifier_is_refused(fed: Federation, device: P256PrivateKey) -> None:
    aimed = shown(fed, device, aud="https://bank.example/verify")
    assert reason(fed, aimed) is R.KEY_BINDING_AUDIENCE_MISMATCH
    mine = BindingPolicy(
        required=True, nonce=NONCE, audiences=frozenset({"https://bank.example/verify"})
    )
    assert verify_licence(aimed, fed.trust, fed.statuses, now=NOW, binding=mine).holder_bound


def test_kb_moved_to_other_disclosures_is_refused(fed: Federation, device: P256PrivateKey) -> None:
    # the KB-JWT of a presentation showing only the licence class, put under one that
    # also shows the name: sd_hash covers exactly what was shown
    licence = bound_licence(fed, device)
    small = bind(present(licence, ["licence_class"]), device, nonce=NONCE, iat=NOW)
    kb = small.rsplit("~", 1)[1]
    assert reason(fed, present(licence, ["licence_class", "name"]) + kb) is (
        R.KEY_BINDING_SD_HASH_MISMATCH
    )
    # and a KB-JWT whose sd_hash was computed wrongly by the device
    wrong = bind(
        present(licence, SHOWN),
        device,
        nonce=NONCE,
        iat=NOW,
        payload_extra={"sd_hash": sd_hash("x~")},
    )
    assert reason(fed, wrong) is R.KEY_BINDING_SD_HASH_MISMATCH


def test_a_kb_jwt_is_checked_even_when_binding_is_not_required(
    fed: Federation, device: P256PrivateKey
) -> None:
    lax = BindingPolicy(required=False, nonce=NONCE)
    assert reason(fed, shown(fed, device, nonce="OTHER123"), lax) is R.KEY_BINDING_NONCE_MISMATCH


@pytest.mark.parametrize(
    ("header", "claims"),
    [
        ({"typ": "JWT"}, {}),
        ({"alg": "none"}, {}),
        ({"alg": "HS256"}, {}),
        ({}, {"iat": "now"}),
        ({}, {"nonce": None}),
        ({}, {"sd_hash": 5}),
        ({}, {"aud": ["a"]}),
    ],
)
def test_malformed_kb_jwt(
    fed: Federation, device: P256PrivateKey, header: dict, claims: dict
) -> None:
    licence = present(bound_licence(fed, device), SHOWN)
    payload = {"iat": NOW, "aud": ANY_VERIFIER, "nonce": NONCE, "sd_hash": sd_hash(licence)}
    payload.update(claims)
    compact = bind(
        licence, device, nonce=NONCE, iat=NOW, header_extra=header, payload_extra=payload
    )
    assert reason(fed, compact) is R.MALFORMED


def test_garbage_after_the_last_tilde_is_malformed(fed: Federation, device: P256PrivateKey) -> None:
    licence = present(bound_licence(fed, device), SHOWN)
    assert reason(fed, licence + "abc") is R.MALFORMED
    assert reason(fed, licence + "a.b.c") is R.MALFORMED


def test_unreadable_cnf_is_malformed_only_when_a_binding_is_checked(
    fed: Federation, device: P256PrivateKey
) -> None:
    sm2_cnf = fed.issue(cnf={"jwk": generate("SM2").public().jwk()})  # not a device key
    licence = present(sm2_cnf, SHOWN)
    assert verify_licence(licence, fed.trust, fed.statuses, now=NOW).holder_bound is False
    assert reason(fed, bind(licence, device, nonce=NONCE, iat=NOW)) is R.MALFORMED


def test_revoked_licence_is_reported_revoked_even_when_bound(
    fed: Federation, device: P256PrivateKey
) -> None:
    revoked = present(fed.issue(idx=7, cnf={"jwk": device.public().jwk()}), SHOWN)
    assert reason(fed, bind(revoked, device, nonce=NONCE, iat=NOW)) is R.REVOKED


def test_parsed_sd_part_is_what_sd_hash_covers(fed: Federation, device: P256PrivateKey) -> None:
    compact = shown(fed, device)
    parsed = parse_sd_jwt(compact)
    assert parsed.kb_jwt and compact == parsed.sd_part + parsed.kb_jwt
    assert parsed.sd_part.endswith("~")


def test_holder_key_from_jwk() -> None:
    p256 = P256PrivateKey.generate().public()
    assert holder_key_from_jwk(p256.jwk()).kid == p256.kid
    ed = generate().public()
    assert holder_key_from_jwk(ed.jwk()).kid == ed.kid
    with pytest.raises(KeyError_):
        holder_key_from_jwk({**p256.jwk(), "d": "secret"})  # a leaked private key
    with pytest.raises(KeyError_):
        holder_key_from_jwk(generate("SM2").public().jwk())
    with pytest.raises(KeyError_):
        holder_key_from_jwk({**p256.jwk(), "x": b64u(b"\x01" * 32)})  # not on the curve
    with pytest.raises(KeyError_):
        holder_key_from_jwk("not a jwk")


def test_es256_signature_round_trip() -> None:
    key = P256PrivateKey.generate()
    sig = key.sign(b"data")
    assert len(sig) == 64
    assert key.public().verify(b"data", sig)
    assert not key.public().verify(b"other", sig)
    assert not key.public().verify(b"data", sig[:63])
    assert not key.public().verify(b"data", bytes(64))
