"""A small federation for the licence-format tests (tests/unit/licences): a root key,
three issuers, their status lists, and a driving licence (驾驶证) to issue and present.
No database. The fixtures are re-exported by tests/unit/licences/conftest.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from tongban.crypto.signing import Alg, PrivateKey, b64u, generate
from tongban.licences.sdjwt import issue_sd_jwt, present
from tongban.licences.statuslist import LocalStatuses, StatusList
from tongban.licences.trustlist import (
    TrustedIssuer,
    TrustList,
    key_entry,
    sign_trust_list,
    verify_trust_list,
)

NOW = 1_750_000_000
DAY = 86_400
JS = "https://js.tongban.example/licences"
ZJ = "https://zj.tongban.example/licences"
AH = "https://ah.tongban.example/licences"
VCT = "urn:tongban:licence:driving"
DISCLOSABLE = (
    "name",
    "sex",
    "nationality",
    "birth_date",
    "address",
    "id_number",
    "licence_class",
    "first_issue_date",
)
SHOWN = ("name", "birth_date", "licence_class", "id_number")


def driving_claims(iss: str, *, idx: int = 5, uri: str | None = None, **over: Any) -> dict:
    claims: dict[str, Any] = {
        "iss": iss,
        "iat": NOW - 10 * DAY,
        "nbf": NOW - 10 * DAY,
        "exp": NOW + 6 * 365 * DAY,
        "vct": VCT,
        "licence_id": "1.2.156.3005.2.DL.11320000014000529X.0000000001.01.N",
        "status": {"status_list": {"idx": idx, "uri": uri or iss + "/status/1"}},
        "name": "王芳",
        "sex": "女",
        "nationality": "中国",
        "birth_date": "1990-05-17",
        "address": "江苏省苏州市吴江区松陵镇中山北路1号",
        "id_number": "320584199005170023",
        "licence_class": "C1",
        "first_issue_date": "2012-08-01",
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


@dataclass
class Federation:
    """Issuers JS and ZJ (one current key each) and AH (an old key retired at NOW - 5
    days, a new one since then, and a withdrawn key), the root, and status lists."""

    alg: Alg
    root: PrivateKey
    keys: dict[str, PrivateKey]
    ah_old: PrivateKey
    ah_withdrawn: PrivateKey
    trust: TrustList
    trust_token: str
    lists: dict[str, StatusList] = field(default_factory=dict)

    @property
    def statuses(self) -> LocalStatuses:
        return LocalStatuses(self.lists)

    def issue(self, iss: str = JS, key: PrivateKey | None = None, **over: Any) -> str:
        return issue_sd_jwt(driving_claims(iss, **over), DISCLOSABLE, key or self.keys[iss])

    def presentation(self, iss: str = JS, shown: tuple[str, ...] = SHOWN, **over: Any) -> str:
        return present(self.issue(iss, **over), shown)


def make_federation(alg: Alg) -> Federation:
    root = generate(Alg.EDDSA)
    keys = {JS: generate(alg), ZJ: generate(alg), AH: generate(alg)}
    ah_old, ah_withdrawn = generate(alg), generate(alg)
    issuers = [
        TrustedIssuer(JS, "320000", "江苏省", [key_entry(keys[JS].public(), nbf=NOW - 400 * DAY)]),
        TrustedIssuer(ZJ, "330000", "浙江省", [key_entry(keys[ZJ].public(), nbf=NOW - 400 * DAY)]),
        TrustedIssuer(
            AH,
            "340000",
            "安徽省",
            [
                key_entry(ah_old.public(), nbf=NOW - 400 * DAY, exp=NOW - 5 * DAY),
                key_entry(keys[AH].public(), nbf=NOW - 5 * DAY),
                key_entry(ah_withdrawn.public(), nbf=NOW - 400 * DAY, exp=NOW - 20 * DAY),
            ],
        ),
    ]
    token = sign_trust_list(issuers, root, iat=NOW - DAY, exp=NOW + 7 * DAY)
    trust = verify_trust_list(token, [root.public()], now=NOW)
    lists: dict[str, StatusList] = {}
    for iss in (JS, ZJ, AH):
        lst = StatusList(2, 1024)
        lst.set(7, 1)  # revoked
        lst.set(8, 2)  # suspended
        lst.set(9, 3)  # application-specific
        lists[iss + "/status/1"] = lst
    return Federation(alg, root, keys, ah_old, ah_withdrawn, trust, token, lists)


_CACHE: dict[Alg, Federation] = {}


def federation_for(alg: Alg) -> Federation:
    if alg not in _CACHE:
        _CACHE[alg] = make_federation(alg)
    return _CACHE[alg]


@pytest.fixture(params=[Alg.EDDSA, Alg.SM2], ids=["ed25519", "sm2"], scope="session")
def fed(request: pytest.FixtureRequest) -> Federation:
    return federation_for(request.param)


@pytest.fixture(scope="session")
def ed_fed() -> Federation:
    return federation_for(Alg.EDDSA)


def enc(obj: Any) -> str:
    """base64url of compact UTF-8 JSON (to forge token parts)."""
    return b64u(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())


def forge_jwt(header: dict, payload: dict, key: PrivateKey) -> str:
    """A JWS signed by `key` with exactly `header` (kid and alg NOT taken from the key)."""
    signing_input = enc(header) + "." + enc(payload)
    return signing_input + "." + b64u(key.sign(signing_input.encode()))
