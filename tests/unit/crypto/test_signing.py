"""tongban.crypto.signing: both suites round-trip, refuse what they must, and SM2
interoperates with gmssl (an independent pure-Python implementation) both ways."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gmssl import sm2 as gm_sm2

from tongban.crypto.signing import (
    Alg,
    KeyError_,
    PrivateKey,
    b64u,
    b64u_decode,
    digest,
    generate,
    load_private_pem,
    load_public_pem,
    public_from_jwk,
    sm3,
    thumbprint,
)

ALGS = pytest.mark.parametrize("alg", [Alg.EDDSA, Alg.SM2], ids=["ed25519", "sm2"])
DATA = "电子证照 licence payload".encode()


@ALGS
def test_sign_verify(alg: Alg) -> None:
    key = generate(alg)
    sig = key.sign(DATA)
    assert len(sig) == 64
    assert key.public().verify(DATA, sig)
    assert not key.public().verify(DATA + b"x", sig)
    assert not generate(alg).public().verify(DATA, sig)
    assert not key.public().verify(DATA, sig[:-1])
    assert not key.public().verify(DATA, sig + b"\x00")
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    assert not key.public().verify(DATA, flipped)


def test_sm2_zero_r_or_s_refused() -> None:
    key = generate(Alg.SM2)
    sig = key.sign(DATA)
    assert not key.public().verify(DATA, bytes(32) + sig[32:])
    assert not key.public().verify(DATA, sig[:32] + bytes(32))


def test_suites_do_not_cross() -> None:
    ed, sm = generate(Alg.EDDSA), generate(Alg.SM2)
    assert not sm.public().verify(DATA, ed.sign(DATA))
    assert not ed.public().verify(DATA, sm.sign(DATA))


@ALGS
def test_pem_round_trip(alg: Alg) -> None:
    key = generate(alg)
    again = load_private_pem(key.pem())
    assert again.alg is alg and again.kid == key.kid
    assert key.public().verify(DATA, again.sign(DATA))
    locked = key.pem(passphrase=b"secret")
    assert "ENCRYPTED" in locked
    assert load_private_pem(locked, b"secret").kid == key.kid
    with pytest.raises(KeyError_):
        load_private_pem(locked, b"wrong")
    pub = load_public_pem(key.public().pem())
    assert pub == key.public() and pub.verify(DATA, key.sign(DATA))


@pytest.mark.parametrize(
    "pem", ["", "not a pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"]
)
def test_bad_pem(pem: str) -> None:
    with pytest.raises(KeyError_):
        load_private_pem(pem)
    with pytest.raises(KeyError_):
        load_public_pem(pem)


@ALGS
def test_jwk_round_trip_and_stable_thumbprint(alg: Alg) -> None:
    key = generate(alg)
    jwk = key.public().jwk()
    assert jwk["kid"] == key.kid == thumbprint(jwk) and jwk["alg"] == alg.value
    assert "d" not in jwk
    again = public_from_jwk(jwk)
    assert again == key.public() and again.kid == key.kid
    assert again.verify(DATA, key.sign(DATA))
    # the thumbprint ignores member order and non-required members
    reordered = dict(reversed(list(jwk.items())))
    assert thumbprint({**reordered, "use": "sig"}) == key.kid
    if alg is Alg.SM2:
        assert (jwk["kty"], jwk["crv"]) == ("EC", "SM2")
        assert len(b64u_decode(jwk["x"])) == len(b64u_decode(jwk["y"])) == 32
    else:
        assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")


def test_rfc8032_and_rfc8037_vectors() -> None:
    # RFC 8032 §7.1 TEST 1 (empty message); RFC 8037 A.3 thumbprint of its public key
    secret = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    key = PrivateKey(Alg.EDDSA, Ed25519PrivateKey.from_private_bytes(secret))
    assert key.public().jwk()["x"] == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert key.kid == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    assert key.sign(b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
        "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )


@pytest.mark.parametrize(
    "jwk",
    [
        {},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        {"kty": "OKP", "crv": "X25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "OKP", "crv": "Ed25519"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo="},
        {"kty": "OKP", "crv": "Ed25519", "x": 12},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "EC", "crv": "SM2", "x": b64u(bytes(32))},
        {"kty": "EC", "crv": "SM2", "x": b64u(bytes(32)), "y": b64u(bytes(32))},
        {"kty": "EC", "crv": "SM2", "x": b64u(b"\x01" * 32), "y": b64u(b"\x02" * 32)},
        {"kty": "EC", "crv": "SM2", "x": "!!", "y": "!!"},
    ],
)
def test_malformed_jwk(jwk: dict) -> None:
    with pytest.raises(KeyError_):
        public_from_jwk(jwk)


def test_b64u_is_strict() -> None:
    assert b64u(b"\xfb\xff") == "-_8"
    assert b64u_decode("-_8") == b"\xfb\xff"
    for bad in ("-_8=", "+/8", "-_9", "a", "中"):
        with pytest.raises(ValueError):
            b64u_decode(bad)


def test_digests() -> None:
    # GB/T 32905 example 1: SM3("abc")
    assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert digest("sm3", b"abc") == sm3(b"abc")
    assert digest("sha-256", b"abc").hex().startswith("ba7816bf")
    with pytest.raises(ValueError):
        digest("md5", b"abc")


def _gmssl_pair() -> tuple[PrivateKey, gm_sm2.CryptSM2]:
    # gmssl's CryptSM2 strips leading "0"/"4" characters from the public key hex
    # (lstrip("04")), so draw keys whose x does not start with either.
    while True:
        key = generate(Alg.SM2)
        jwk = key.public().jwk()
        pub_hex = (b64u_decode(jwk["x"]) + b64u_decode(jwk["y"])).hex()
        if pub_hex[0] not in "04":
            break
    d = key._key.private_numbers().private_value
    return key, gm_sm2.CryptSM2(private_key=f"{d:064x}", public_key=pub_hex)


def test_sm2_tongban_signature_verifies_with_gmssl() -> None:
    key, gm = _gmssl_pair()
    sig = key.sign(DATA)
    assert gm.verify_with_sm3(sig.hex(), DATA)
    assert not gm.verify_with_sm3(sig.hex(), DATA + b"x")


def test_sm2_gmssl_signature_verifies_with_tongban() -> None:
    key, gm = _gmssl_pair()
    sig_hex = gm.sign_with_sm3(DATA)
    sig = bytes.fromhex(sig_hex.rjust(128, "0"))
    assert key.public().verify(DATA, sig)
    assert not key.public().verify(DATA + b"x", sig)
