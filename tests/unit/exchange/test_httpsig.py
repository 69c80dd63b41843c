"""RFC 9421 signatures and RFC 9530 digests, against the RFCs' own test vectors, and the
wire format of node messages (signing and every reason a receiver refuses one)."""

from __future__ import annotations

import time
import uuid

import pytest

from tongban.crypto.signing import Alg, generate, load_private_pem
from tongban.exchange import httpsig
from tongban.exchange.federation import Federation, Node
from tongban.exchange.transport import Outcome, Rejected, classify, signed_request, verify_request

#: RFC 9421 appendix B.1.4, the Ed25519 test key.
RFC_KEY = load_private_pem(
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n"
    "-----END PRIVATE KEY-----\n"
)
RFC_REQUEST = httpsig.Request(
    "POST",
    "https://example.com/foo?param=Value&Pet=dog",
    {
        "Host": "example.com",
        "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
        "Content-Type": "application/json",
        "Content-Length": "18",
    },
)
B26_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"'
)
B26_SIGNATURE = "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"


def test_rfc9421_b26_ed25519_vector_is_reproduced_and_verifies() -> None:
    headers = httpsig.sign(
        RFC_REQUEST,
        RFC_KEY,
        ("date", "@method", "@path", "@authority", "content-type", "content-length"),
        created=1618884473,
        keyid="test-key-ed25519",
        label="sig-b26",
        include_alg=False,
    )
    assert headers == {"Signature-Input": B26_INPUT, "Signature": B26_SIGNATURE}
    req = httpsig.Request(
        RFC_REQUEST.method,
        RFC_REQUEST.target_uri,
        {**RFC_REQUEST.headers, "Signature-Input": B26_INPUT, "Signature": B26_SIGNATURE},
    )
    signed = httpsig.read_signature(req)
    assert signed.label == "sig-b26" and signed.param("created") == 1618884473
    assert httpsig.verify(req, signed, RFC_KEY.public())
    tampered = httpsig.Request("GET", req.target_uri, req.headers)
    assert not httpsig.verify(tampered, signed, RFC_KEY.public())


def test_rfc9530_content_digest_example() -> None:
    body = b'{"hello": "world"}\n'
    assert httpsig.content_digest(body) == (
        "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:"
    )
    assert httpsig.digest_matches(httpsig.content_digest(body), body)
    assert not httpsig.digest_matches(httpsig.content_digest(body), body + b" ")
    assert not httpsig.digest_matches("sha-512=:AAAA:", body)
    assert not httpsig.digest_matches("garbage(", body)


@pytest.mark.parametrize(
    "text",
    ['a=("x" "y");created=1;keyid="k"', "sig=:AAAA:", 'a=("@method");nonce="n\\"q"'],
)
def test_structured_fields_round_trip(text: str) -> None:
    parsed = httpsig.parse_dictionary(text)
    label, value = text.split("=", 1)
    item = parsed[label]
    if isinstance(item, httpsig.InnerList):
        assert httpsig.serialize_inner_list(item) == value


@pytest.mark.parametrize("text", ['a=("x"', "a=:!!:", 'a="unterminated', "A=1", "a=1,"])
def test_malformed_structured_fields_are_refused(text: str) -> None:
    with pytest.raises(httpsig.SignatureError):
        httpsig.parse_dictionary(text)


@pytest.mark.parametrize("alg", [Alg.EDDSA, Alg.SM2])
def test_both_suites_sign_and_verify(alg: Alg) -> None:
    key = generate(alg)
    req = httpsig.Request("POST", "http://n.test/x", {"Content-Type": "application/json"})
    headers = httpsig.sign(req, key, ("@method", "@target-uri", "content-type"), created=1)
    assert f'alg="{httpsig.HTTPSIG_ALG[alg]}"' in headers["Signature-Input"]
    signed_req = httpsig.Request(req.method, req.target_uri, {**req.headers, **headers})
    signed = httpsig.read_signature(signed_req)
    assert httpsig.verify(signed_req, signed, key.public())
    assert not httpsig.verify(signed_req, signed, generate(alg).public())


def test_status_codes_decide_retry_or_dead_letter() -> None:
    assert classify(200) is Outcome.DELIVERED
    assert {classify(s) for s in (400, 401, 403, 413, 415, 421, 422)} == {Outcome.REFUSED}
    assert {classify(s) for s in (408, 409, 425, 429, 500, 502, 503)} == {Outcome.RETRY}


# --- the node message format ----------------------------------------------------------

SENDER, OTHER = generate(Alg.EDDSA), generate(Alg.SM2)
FED = Federation(
    "t",
    {
        "a": Node("a", "A", ("310000",), "http://a.test", (SENDER.public(),)),
        "b": Node("b", "B", ("320000",), "http://b.test", (OTHER.public(),)),
        "c": Node("c", "C", ("330000",), "http://c.test", (OTHER.public(),), frozenset()),
    },
)


def _env(**kw: object) -> dict[str, object]:
    env: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "type": "case.forwarded",
        "source_node": "a",
        "source_jurisdiction": "310000",
        "target_jurisdiction": "320000",
        "created_at": "2026-01-01T00:00:00+00:00",
        "payload": {"number": "1"},
    }
    env.update(kw)
    return env


def _verify(body: bytes, headers: dict[str, str], uri: str = "http://b.test/exchange/v1/inbox"):  # type: ignore[no-untyped-def]
    return verify_request(
        method="POST",
        target_uri=uri,
        headers=headers,
        body=body,
        federation=FED,
        local=FED.nodes["b"],
        allowed_types=lambda n: frozenset({"case.forwarded"}) if n.sends is None else n.sends,
        now=time.time(),
        max_skew=300,
    )


def test_a_signed_message_verifies() -> None:
    env = _env()
    body, headers = signed_request(env, SENDER, "http://b.test/exchange/v1/inbox")
    out = _verify(body, headers)
    assert str(out.id) == env["id"] and out.source_node == "a" and out.payload == {"number": "1"}


def _reason(body: bytes, headers: dict[str, str], **kw: str) -> tuple[str, int]:
    with pytest.raises(Rejected) as info:
        _verify(body, headers, **kw)
    return info.value.reason, info.value.status


URI = "http://b.test/exchange/v1/inbox"


def test_each_failure_is_refused_with_its_own_reason() -> None:
    body, headers = signed_request(_env(), SENDER, URI)
    assert _reason(body, {"Content-Type": "application/json"}) == ("signature-missing", 400)
    assert _reason(body + b" ", headers) == ("digest-mismatch", 400)
    assert _reason(body, headers, uri="http://evil.test/exchange/v1/inbox") == (
        "bad-signature",
        401,
    )
    b2, h2 = signed_request(_env(source_node="zz"), SENDER, URI)
    assert _reason(b2, h2) == ("unknown-node", 401)
    b3, h3 = signed_request(_env(), OTHER, URI)  # key of another node
    assert _reason(b3, h3) == ("unknown-key", 401)
    b4, h4 = signed_request(_env(), SENDER, URI, created=int(time.time()) - 301)
    assert _reason(b4, h4) == ("stale", 401)
    b5, h5 = signed_request(_env(type="no.such.type"), SENDER, URI)
    assert _reason(b5, h5) == ("type-not-allowed", 403)
    b6, h6 = signed_request(_env(source_jurisdiction="330000"), SENDER, URI)
    assert _reason(b6, h6) == ("sender-not-serving-source", 403)
    b7, h7 = signed_request(_env(target_jurisdiction="310000"), SENDER, URI)
    assert _reason(b7, h7) == ("misdirected", 421)
    b8, h8 = signed_request(_env(), SENDER, URI)
    h8["Content-Type"] = "text/plain"
    assert _reason(b8, h8) == ("bad-content-type", 415)


def test_a_forged_signature_with_the_senders_keyid_is_bad_signature() -> None:
    env = _env()
    body, headers = signed_request(env, SENDER, URI)
    forger = generate(Alg.EDDSA)
    req = httpsig.Request("POST", URI, {k: v for k, v in headers.items() if "ignature" not in k})
    forged = httpsig.sign(
        req,
        forger,
        ("@method", "@target-uri", "content-digest", "content-type"),
        created=int(time.time()),
        keyid=SENDER.kid,
        nonce=str(env["id"]),
        label="tongban",
    )
    assert _reason(body, {**headers, **forged}) == ("bad-signature", 401)


def test_nonce_must_be_the_message_id_and_components_complete() -> None:
    env = _env()
    body, headers = signed_request(env, SENDER, URI)
    req = httpsig.Request("POST", URI, {k: v for k, v in headers.items() if "ignature" not in k})
    covered = ("@method", "@target-uri", "content-digest", "content-type")
    other_nonce = httpsig.sign(
        req, SENDER, covered, created=int(time.time()), nonce="x", label="tongban"
    )
    assert _reason(body, {**headers, **other_nonce}) == ("nonce-mismatch", 400)
    partial = httpsig.sign(
        req, SENDER, covered[:2], created=int(time.time()), nonce=str(env["id"]), label="tongban"
    )
    assert _reason(body, {**headers, **partial}) == ("signature-incomplete", 400)


def test_a_node_with_an_explicit_sends_list_may_send_only_those() -> None:
    fed_c = Node("c", "C", ("330000",), "http://c.test", (SENDER.public(),), frozenset())
    fed = Federation("t", {"c": fed_c, "b": FED.nodes["b"]})
    body, headers = signed_request(_env(source_node="c", source_jurisdiction="330000"), SENDER, URI)
    with pytest.raises(Rejected) as info:
        verify_request(
            method="POST",
            target_uri=URI,
            headers=headers,
            body=body,
            federation=fed,
            local=fed.nodes["b"],
            allowed_types=lambda n: frozenset({"case.forwarded"}) & (n.sends or frozenset()),
            now=time.time(),
            max_skew=300,
        )
    assert info.value.reason == "type-not-allowed"
