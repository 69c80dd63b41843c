"""The subset of RFC 9421 (HTTP Message Signatures) and RFC 9530 (Content-Digest) that
nodes use to sign the messages they send each other. Pure functions, no web framework.

Written by hand because no Python library signs HTTP messages with SM2: the signature
itself comes from `tongban.crypto.signing`, so the same code serves Ed25519 (RFC 9421's
registered ``ed25519``) and SM2 with SM3 (``sm2-sm3``, our label: the IANA registry has
no SM2 entry). What is covered:

- derived components ``@method``, ``@target-uri``, ``@authority``, ``@scheme``,
  ``@path``, ``@query`` and any header field by its lowercase name (no component
  parameters such as ``;sf`` or ``;req``);
- signature parameters ``created``, ``expires``, ``keyid``, ``alg``, ``nonce``, ``tag``;
- RFC 8941 structured fields just far enough to read and write the ``Signature-Input``
  and ``Signature`` dictionaries and ``Content-Digest``.

It reproduces the Ed25519 test vector of RFC 9421 appendix B.2.6 (tests/unit/exchange).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tongban.crypto.signing import Alg, PrivateKey, PublicKey

#: RFC 9421 `alg` values of the two suites (`sm2-sm3` is ours: not in the IANA registry).
HTTPSIG_ALG = {Alg.EDDSA: "ed25519", Alg.SM2: "sm2-sm3"}
ALG_FROM_HTTPSIG = {v: k for k, v in HTTPSIG_ALG.items()}


class SignatureError(ValueError):
    """A signature or digest header that cannot be read or does not verify."""


# --- RFC 8941 structured fields (the subset in use) -------------------------------


class Token(str):
    """An sf-token (unquoted)."""


Bare = int | str | bytes | bool | Token
Params = dict[str, Bare]


@dataclass
class Item:
    value: Bare
    params: Params = field(default_factory=dict)


@dataclass
class InnerList:
    items: list[Item]
    params: Params = field(default_factory=dict)


_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*")
_INTEGER = re.compile(r"-?[0-9]{1,15}")
#: A well-formed sf-string in one match (printable ASCII but `"` and `\`, or those two
#: escaped): the character loop below runs only for one that is not, to say where.
_STRING = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
_ESCAPED = re.compile(r'\\(["\\])')


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def fail(self, what: str) -> SignatureError:
        return SignatureError(f"structured field: {what} at {self.i}")

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def sp(self) -> None:
        while self.peek() == " ":
            self.i += 1

    def ows(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.i += 1

    def key(self) -> str:
        m = _KEY.match(self.s, self.i)
        if not m:
            raise self.fail("key expected")
        self.i = m.end()
        return m.group()

    def bare(self) -> Bare:
        c = self.peek()
        if c == '"':
            m = _STRING.match(self.s, self.i)
            if m:  # (every string a signature carries: the loop is for the error)
                self.i = m.end()
                text = m.group(1)
                return _ESCAPED.sub(r"\1", text) if "\\" in text else text
            self.i += 1
            out = []
            while True:
                c = self.peek()
                if not c:
                    raise self.fail("unterminated string")
                self.i += 1
                if c == "\\":
                    nxt = self.peek()
                    if nxt not in ('"', "\\"):
                        raise self.fail("bad escape")
                    out.append(nxt)
                    self.i += 1
                elif c == '"':
                    return "".join(out)
                elif not (0x20 <= ord(c) <= 0x7E):
                    raise self.fail("non-ASCII in string")
                else:
                    out.append(c)
        if c == ":":
            end = self.s.find(":", self.i + 1)
            if end < 0:
                raise self.fail("unterminated byte sequence")
            raw = self.s[self.i + 1 : end]
            self.i = end + 1
            try:
                return base64.b64decode(raw, validate=True)
            except ValueError as exc:
                raise self.fail("bad base64") from exc
        if c == "?":
            self.i += 1
            b = self.peek()
            if b not in ("0", "1"):
                raise self.fail("bad boolean")
            self.i += 1
            return b == "1"
        m = _INTEGER.match(self.s, self.i)
        if m:
            if self.s[m.end() : m.end() + 1] == ".":
                raise self.fail("decimals are not supported")
            self.i = m.end()
            return int(m.group())
        m = _TOKEN.match(self.s, self.i)
        if m:
            self.i = m.end()
            return Token(m.group())
        raise self.fail("item expected")

    def params(self) -> Params:
        out: Params = {}
        while self.peek() == ";":
            self.i += 1
            self.sp()
            k = self.key()
            v: Bare = True
            if self.peek() == "=":
                self.i += 1
                v = self.bare()
            out[k] = v
        return out

    def item_or_list(self) -> Item | InnerList:
        if self.peek() == "(":
            self.i += 1
            items: list[Item] = []
            while True:
                self.sp()
                if self.peek() == ")":
                    self.i += 1
                    return InnerList(items, self.params())
                items.append(Item(self.bare(), self.params()))
                if self.peek() not in (" ", ")"):
                    raise self.fail("inner list")
        return Item(self.bare(), self.params())

    def dictionary(self) -> dict[str, Item | InnerList]:
        out: dict[str, Item | InnerList] = {}
        self.sp()
        while self.i < len(self.s):
            k = self.key()
            if self.peek() == "=":
                self.i += 1
                out[k] = self.item_or_list()
            else:
                out[k] = Item(True, self.params())
            self.ows()
            if self.i >= len(self.s):
                return out
            if self.peek() != ",":
                raise self.fail("comma expected")
            self.i += 1
            self.ows()
            if self.i >= len(self.s):
                raise self.fail("trailing comma")
        return out


def parse_dictionary(text: str) -> dict[str, Item | InnerList]:
    """An RFC 8941 dictionary (the subset above); raises SignatureError."""
    return _Parser(text.strip()).dictionary()


def _ser_bare(v: Bare) -> str:
    if isinstance(v, bool):
        return "?1" if v else "?0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, bytes):
        return ":" + base64.b64encode(v).decode() + ":"
    if isinstance(v, Token):
        return str(v)
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ser_params(p: Params) -> str:
    return "".join(f";{k}" if v is True else f";{k}={_ser_bare(v)}" for k, v in p.items())


def serialize_inner_list(il: InnerList) -> str:
    inner = " ".join(_ser_bare(i.value) + _ser_params(i.params) for i in il.items)
    return f"({inner}){_ser_params(il.params)}"


# --- RFC 9530 Content-Digest --------------------------------------------------------


def content_digest(body: bytes) -> str:
    """The `Content-Digest` value of `body` with sha-256."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def digest_matches(header: str | None, body: bytes) -> bool:
    """True when `header` carries a sha-256 digest and it is the digest of `body`."""
    if not header:
        return False
    try:
        d = parse_dictionary(header)
    except SignatureError:
        return False
    item = d.get("sha-256")
    return (
        isinstance(item, Item)
        and isinstance(item.value, bytes)
        and item.value == hashlib.sha256(body).digest()
    )


# --- RFC 9421 ---------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """What a signature covers of an HTTP request. Header names in any case."""

    method: str
    target_uri: str
    headers: Mapping[str, str]

    def header(self, name: str) -> str | None:
        for k, v in self.headers.items():
            if k.lower() == name:
                return v
        return None


def _component(req: Request, name: str) -> str:
    parts = urlsplit(req.target_uri)
    if name == "@method":
        return req.method.upper()
    if name == "@target-uri":
        return req.target_uri
    if name == "@authority":
        host = (parts.hostname or "").lower()
        port = parts.port
        default = {"http": 80, "https": 443}.get(parts.scheme.lower())
        return host if port is None or port == default else f"{host}:{port}"
    if name == "@scheme":
        return parts.scheme.lower()
    if name == "@path":
        return parts.path or "/"
    if name == "@query":
        return "?" + parts.query
    if name.startswith("@"):
        raise SignatureError(f"unsupported derived component {name}")
    value = req.header(name)
    if value is None:
        raise SignatureError(f"covered header {name} is missing")
    return value.strip()


def signature_base(req: Request, params: InnerList) -> bytes:
    """The signature base (RFC 9421 §2.5) of `req` for the components in `params`."""
    lines = []
    seen = set()
    for it in params.items:
        if not isinstance(it.value, str) or isinstance(it.value, Token) or it.params:
            raise SignatureError("component identifiers must be plain strings")
        name = it.value
        if name != name.lower() or name in seen or name == "@signature-params":
            raise SignatureError(f"bad component identifier {name}")
        seen.add(name)
        value = _component(req, name)
        if "\n" in value or "\r" in value:
            raise SignatureError(f"component {name} holds a line break")
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {serialize_inner_list(params)}')
    return "\n".join(lines).encode("ascii", errors="strict")


@dataclass(frozen=True)
class Signed:
    """One signature read from a request: its label, parameters and bytes."""

    label: str
    params: InnerList
    signature: bytes

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(str(i.value) for i in self.params.items)

    def param(self, name: str) -> Bare | None:
        return self.params.params.get(name)


def sign(
    req: Request,
    key: PrivateKey,
    components: tuple[str, ...],
    *,
    created: int,
    keyid: str | None = None,
    nonce: str | None = None,
    expires: int | None = None,
    label: str = "sig1",
    include_alg: bool = True,
) -> dict[str, str]:
    """The `Signature-Input` and `Signature` headers that sign `req` with `key`."""
    p: Params = {"created": created}
    if expires is not None:
        p["expires"] = expires
    p["keyid"] = keyid or key.kid
    if include_alg:
        p["alg"] = HTTPSIG_ALG[key.alg]
    if nonce is not None:
        p["nonce"] = nonce
    params = InnerList([Item(c) for c in components], p)
    sig = key.sign(signature_base(req, params))
    return {
        "Signature-Input": f"{label}={serialize_inner_list(params)}",
        "Signature": f"{label}={_ser_bare(sig)}",
    }


def read_signature(req: Request, label: str | None = None) -> Signed:
    """The signature labelled `label` (or the only one) from `req`'s headers."""
    si, sv = req.header("signature-input"), req.header("signature")
    if not si or not sv:
        raise SignatureError("Signature-Input and Signature headers are required")
    inputs, sigs = parse_dictionary(si), parse_dictionary(sv)
    if label is None:
        if len(inputs) != 1:
            raise SignatureError("exactly one signature expected")
        label = next(iter(inputs))
    params, sig = inputs.get(label), sigs.get(label)
    if not isinstance(params, InnerList):
        raise SignatureError(f"no signature input labelled {label}")
    if not isinstance(sig, Item) or not isinstance(sig.value, bytes):
        raise SignatureError(f"no signature labelled {label}")
    return Signed(label, params, sig.value)


def verify(req: Request, signed: Signed, key: PublicKey) -> bool:
    """True when `signed` is `key`'s signature over `req` (alg, when given, must match)."""
    alg = signed.param("alg")
    if alg is not None and ALG_FROM_HTTPSIG.get(str(alg)) is not key.alg:
        return False
    try:
        base = signature_base(req, signed.params)
    except (SignatureError, UnicodeEncodeError):
        return False
    return key.verify(base, signed.signature)
