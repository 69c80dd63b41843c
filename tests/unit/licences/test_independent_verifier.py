"""An independent SD-JWT implementation agrees with ours, both ways.

The `sd-jwt` package (OpenWallet Foundation's reference implementation, module
`sd_jwt`, 0.10.x, built on jwcrypto) verifies the platform's Ed25519 licences with the
issuer's public JWK, and tongban's verifier accepts what its issuer produces.

Adaptations (of the test, not of our format):
- `SDJWTVerifier` takes the presentation and a callback ``(iss, header) -> key``; it
  only checks a KB-JWT when `expected_aud`/`expected_nonce` are given, so leaving both
  None verifies a presentation without key binding, which is what we issue. Its
  compact parser expects the trailing ``~`` (an empty KB-JWT slot), which we emit.
- It does not check `typ`, so `dc+sd-jwt` is no obstacle.
- jwcrypto's JWK has no SM2, so only Ed25519 licences are cross-checked here (SM2
  signatures are cross-checked against gmssl in tests/unit/crypto).
"""

from __future__ import annotations

import json

import pytest
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

from licence_kit import DISCLOSABLE, JS, NOW, SHOWN, Federation, driving_claims
from tongban.licences.rejection import LicenceRejected
from tongban.licences.sdjwt import present
from tongban.licences.verify import verify_licence


def _their_verify(fed: Federation, presentation: str) -> dict:
    jwk = JWK.from_json(json.dumps(fed.keys[JS].public().jwk()))
    asked = []

    def issuer_key(iss: str, header: dict) -> JWK:
        asked.append((iss, header.get("kid")))
        return jwk

    result = SDJWTVerifier(presentation, issuer_key).get_verified_payload()
    assert asked == [(JS, fed.keys[JS].kid)]
    return result


@pytest.mark.parametrize(
    "shown",
    [SHOWN, (), DISCLOSABLE, ("address",)],
    ids=["some", "none", "all", "one"],
)
def test_they_verify_our_presentations(ed_fed: Federation, shown: tuple[str, ...]) -> None:
    presentation = present(ed_fed.issue(), shown)
    theirs = _their_verify(ed_fed, presentation)
    ours = verify_licence(presentation, ed_fed.trust, ed_fed.statuses, now=NOW)
    claims = driving_claims(JS)
    expected_disclosed = {k: claims[k] for k in shown}
    assert {k: theirs[k] for k in DISCLOSABLE if k in theirs} == expected_disclosed
    # everything they return is what we return, plus the technical `status`
    assert {k: v for k, v in theirs.items() if k != "status"} == ours.claims
    assert theirs["status"] == claims["status"]


def test_they_refuse_what_we_refuse(ed_fed: Federation) -> None:
    from jwcrypto.jws import InvalidJWSSignature

    mine = present(ed_fed.issue(), SHOWN).split("~")[0].split(".")
    other = present(ed_fed.issue(name="李雷"), SHOWN).split("~")[0].split(".")
    swapped = ".".join([mine[0], mine[1], other[2]]) + "~"
    with pytest.raises(InvalidJWSSignature):
        _their_verify(ed_fed, swapped)
    with pytest.raises(LicenceRejected):
        verify_licence(swapped, ed_fed.trust, None, now=NOW)


def test_we_verify_their_issuance(ed_fed: Federation) -> None:
    key = ed_fed.keys[JS]
    claims = driving_claims(JS)
    user_claims = {SDObj(k) if k in DISCLOSABLE else k: v for k, v in claims.items()}
    issuer = SDJWTIssuer(
        user_claims,
        JWK.from_pem(key.pem().encode()),
        sign_alg="EdDSA",
        add_decoy_claims=True,
        extra_header_parameters={"typ": "dc+sd-jwt", "kid": key.kid},
    )
    issued = issuer.sd_jwt_issuance
    full = verify_licence(issued, ed_fed.trust, ed_fed.statuses, now=NOW)
    assert full.claims == {k: v for k, v in claims.items() if k != "status"}
    shown = verify_licence(present(issued, ["name"]), ed_fed.trust, ed_fed.statuses, now=NOW)
    assert shown.claims["name"] == "王芳" and "id_number" not in shown.claims
