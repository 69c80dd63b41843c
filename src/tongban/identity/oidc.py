"""Signing in through an external OpenID Connect provider (the relying-party side).

The authorization-code flow of OpenID Connect Core 1.0 with PKCE (RFC 7636, S256), a
`state` bound to the browser session and a `nonce` bound to the ID token:

1. `begin` makes the authorization URL and the secrets the browser session keeps
   (state, nonce, code verifier, provider, time);
2. the provider authenticates the person and redirects back with `code` and `state`;
3. `complete` checks the state, redeems the code at the token endpoint (client
   authentication + code verifier), and `verify_id_token` checks the ID token: its
   signature against the provider's JWKS (only the configured asymmetric algorithms),
   `iss` equal to the configured issuer, `aud` containing our client id (`azp` when
   there are several audiences), `exp`/`iat` within the leeway, `nonce` equal to ours;
4. `sign_in` finds, raises, takes over or creates the account (see its docstring) and
   records the level change as an event.

JOSE is joserfc's (JWS/JWK/JWT per the RFCs, Authlib's maintained JOSE core); the three
HTTP calls of the flow are httpx, which the project already uses.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.config import OidcProvider, Settings
from tongban.db import utcnow
from tongban.errors import DomainError, NotFound, PermissionDenied
from tongban.identity import assurance
from tongban.identity.domain import AssuranceLevel, Role, area_city_code, validate_id_number
from tongban.identity.models import Account, ExternalIdentity

#: How long a started login may take before its callback is refused.
PENDING_TTL = 600
#: How long discovery documents and key sets are reused.
_CACHE_TTL = 300.0
_HTTP_TIMEOUT = 10.0


class OidcFailed(DomainError):
    """The login through the provider was refused; `reason` says which check failed."""

    status = 401
    type = "oidc-failed"
    title = "统一身份认证登录失败"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, type=f"oidc-{reason}")
        self.reason = reason


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None


@dataclass(frozen=True)
class ProvenIdentity:
    """What a verified ID token (and the userinfo answer, if needed) says."""

    provider: str
    issuer: str
    subject: str
    id_number: str
    name: str | None
    level: AssuranceLevel


# --- configuration and provider metadata ---------------------------------------------------


def providers(settings: Settings) -> list[OidcProvider]:
    """The OpenID Connect providers configured for this node."""
    return list(settings.oidc_providers)


def provider(name: str, settings: Settings) -> OidcProvider:
    for p in providers(settings):
        if p.name == name:
            return p
    raise NotFound("未配置该统一身份认证平台", type="unknown-oidc-provider")


_cache: dict[str, tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def _cached(key: str, load: Any, refresh: bool = False) -> Any:
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and not refresh and now - hit[0] < _CACHE_TTL:
        return hit[1]
    value = load()
    with _cache_lock:
        _cache[key] = (now, value)
    return value


def _verify(cfg: OidcProvider) -> ssl.SSLContext | bool:
    """TLS verification for this provider: its own CA bundle, or the system's."""
    return ssl.create_default_context(cafile=cfg.ca_file) if cfg.ca_file else True


def _get_json(cfg: OidcProvider, url: str) -> dict[str, Any]:
    try:
        r = httpx.get(url, timeout=_HTTP_TIMEOUT, follow_redirects=False, verify=_verify(cfg))
        r.raise_for_status()
        data = r.json()
    except (httpx.HTTPError, ValueError) as e:
        raise OidcFailed("provider-unavailable", "统一身份认证平台暂时无法访问，请稍后再试") from e
    if not isinstance(data, dict):
        raise OidcFailed("provider-unavailable", "统一身份认证平台的应答无效")
    return data


def metadata(cfg: OidcProvider, refresh: bool = False) -> ProviderMetadata:
    """The provider's discovery document (OpenID Connect Discovery 1.0); its `issuer`
    must be exactly the configured one (section 4.3), so a look-alike cannot answer."""

    def load() -> ProviderMetadata:
        doc = _get_json(cfg, cfg.issuer.rstrip("/") + "/.well-known/openid-configuration")
        if doc.get("issuer") != cfg.issuer:
            raise OidcFailed("wrong-issuer", "统一身份认证平台的配置与设定的签发方不一致")
        try:
            return ProviderMetadata(
                issuer=doc["issuer"],
                authorization_endpoint=str(doc["authorization_endpoint"]),
                token_endpoint=str(doc["token_endpoint"]),
                jwks_uri=str(doc["jwks_uri"]),
                userinfo_endpoint=doc.get("userinfo_endpoint"),
            )
        except KeyError as e:
            raise OidcFailed("provider-unavailable", "统一身份认证平台的配置不完整") from e

    return _cached("meta:" + cfg.issuer, load, refresh)  # type: ignore[no-any-return]


def _key_set(cfg: OidcProvider, meta: ProviderMetadata, refresh: bool = False) -> KeySet:
    return _cached(  # type: ignore[no-any-return]
        "jwks:" + meta.jwks_uri,
        lambda: KeySet.import_key_set(_get_json(cfg, meta.jwks_uri)),  # type: ignore[arg-type]
        refresh,
    )


# --- the flow -------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def begin(
    cfg: OidcProvider, *, link_account: uuid.UUID | None = None
) -> tuple[str, dict[str, Any]]:
    """The URL to send the browser to, and what the browser session must keep until the
    callback (never sent anywhere else). `link_account`: the signed-in account whose
    identity this login is to prove."""
    meta = metadata(cfg)
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": cfg.client_id,
        "redirect_uri": cfg.redirect_url,
        "scope": cfg.scopes,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if cfg.claims_parameter:
        # Ask for the ID number in the signed ID token itself (Core 5.5).
        params["claims"] = _json(
            {"id_token": {cfg.id_number_claim: {"essential": True}, "name": None}}
        )
    pending = {
        "provider": cfg.name,
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "at": int(time.time()),
        "link": str(link_account) if link_account else None,
    }
    sep = "&" if "?" in meta.authorization_endpoint else "?"
    return meta.authorization_endpoint + sep + urlencode(params), pending


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def verify_id_token(
    cfg: OidcProvider,
    id_token: str,
    *,
    nonce: str,
    keys: KeySet | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """The claims of `id_token` once its signature, issuer, audience, times and nonce are
    checked (OpenID Connect Core 3.1.3.7); OidcFailed names the check that failed."""
    key_set = keys or _key_set(cfg, metadata(cfg))
    try:
        token = jwt.decode(id_token, key_set, algorithms=list(cfg.algorithms))
    except JoseError as e:
        if keys is None and isinstance(e, InvalidKeyIdError):
            # The provider may have rotated its keys: fetch them once more.
            return verify_id_token(
                cfg, id_token, nonce=nonce, keys=_key_set(cfg, metadata(cfg), refresh=True), now=now
            )
        raise OidcFailed("bad-signature", "身份令牌签名无效") from e
    except (ValueError, KeyError, TypeError) as e:
        raise OidcFailed("bad-signature", "身份令牌无效或签名密钥未知") from e
    claims = dict(token.claims)
    checks: list[tuple[str, str, dict[str, Any]]] = [
        ("wrong-issuer", "身份令牌的签发方不符", {"iss": {"essential": True, "value": cfg.issuer}}),
        (
            "wrong-audience",
            "身份令牌不是签发给本平台的",
            {"aud": {"essential": True, "value": cfg.client_id}},
        ),
        (
            "bad-nonce",
            "身份令牌与本次登录不符（nonce）",
            {"nonce": {"essential": True, "value": nonce}},
        ),
        ("missing-subject", "身份令牌缺少用户标识", {"sub": {"essential": True}}),
        ("expired", "身份令牌已过期", {"exp": {"essential": True}, "iat": {"essential": True}}),
    ]
    for reason, message, options in checks:
        registry = jwt.JWTClaimsRegistry(now=now, leeway=cfg.leeway, **options)
        try:
            registry.validate({k: claims.get(k) for k in options if k in claims})
        except JoseError as e:
            raise OidcFailed(reason, message) from e
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != cfg.client_id:
        raise OidcFailed("wrong-audience", "身份令牌不是签发给本平台的")
    iat = claims["iat"]
    if not isinstance(iat, int | float) or iat > (now or time.time()) + cfg.leeway:
        raise OidcFailed("expired", "身份令牌的签发时间无效")
    return claims


def complete(
    cfg: OidcProvider,
    pending: dict[str, Any] | None,
    *,
    state: str | None,
    code: str | None,
    error: str | None = None,
) -> ProvenIdentity:
    """Finish the login the browser came back from: check `state` against the session's,
    redeem `code` with the PKCE verifier, verify the ID token, read the ID number."""
    if not pending or pending.get("provider") != cfg.name:
        raise OidcFailed("no-login-started", "登录请求已失效，请重新登录")
    if not state or not secrets.compare_digest(str(pending.get("state", "")), state):
        raise OidcFailed("bad-state", "登录请求与本次会话不符（state），请重新登录")
    if int(time.time()) - int(pending.get("at", 0)) > PENDING_TTL:
        raise OidcFailed("no-login-started", "登录请求已超时，请重新登录")
    if error:
        raise OidcFailed("provider-refused", "统一身份认证平台未完成认证")
    if not code:
        raise OidcFailed("no-code", "统一身份认证平台未返回授权码")
    meta = metadata(cfg)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": cfg.redirect_url,
        "code_verifier": str(pending["verifier"]),
    }
    auth: tuple[str, str] | None = None
    if cfg.token_auth == "client_secret_basic":
        auth = (cfg.client_id, cfg.client_secret)
    else:
        form.update(client_id=cfg.client_id, client_secret=cfg.client_secret)
    try:
        r = httpx.post(
            meta.token_endpoint,
            data=form,
            auth=auth,
            headers={"Accept": "application/json"},
            timeout=_HTTP_TIMEOUT,
            verify=_verify(cfg),
        )
        answer = r.json()
    except (httpx.HTTPError, ValueError) as e:
        raise OidcFailed("provider-unavailable", "统一身份认证平台暂时无法访问，请稍后再试") from e
    if r.status_code != 200 or not isinstance(answer, dict) or "id_token" not in answer:
        raise OidcFailed("token-refused", "统一身份认证平台拒绝了授权码")
    claims = verify_id_token(cfg, str(answer["id_token"]), nonce=str(pending["nonce"]))
    value = claims.get(cfg.id_number_claim)
    name = claims.get("name")
    if value is None and meta.userinfo_endpoint and answer.get("access_token"):
        info = _userinfo(cfg, meta, str(answer["access_token"]))
        # Core 5.3.2: the userinfo answer is about the ID token's subject or ignored.
        if info.get("sub") == claims["sub"]:
            value = info.get(cfg.id_number_claim)
            name = name or info.get("name")
    try:
        id_number = validate_id_number(str(value or ""))
    except ValueError:
        raise OidcFailed("no-id-number", "统一身份认证平台未提供有效的身份证号码") from None
    return ProvenIdentity(
        provider=cfg.name,
        issuer=cfg.issuer,
        subject=str(claims["sub"]),
        id_number=id_number,
        name=str(name)[:80] if isinstance(name, str) and name.strip() else None,
        level=AssuranceLevel(cfg.level),
    )


def _userinfo(cfg: OidcProvider, meta: ProviderMetadata, access_token: str) -> dict[str, Any]:
    try:
        r = httpx.get(
            str(meta.userinfo_endpoint),
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=_HTTP_TIMEOUT,
            verify=_verify(cfg),
        )
        data = r.json() if r.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        data = {}
    return data if isinstance(data, dict) else {}


# --- the account ------------------------------------------------------------------------------


def sign_in(session: Session, proven: ProvenIdentity, current: Account | None) -> Account:
    """The account a proven person signs in to, raised to the provider's level (an
    account_event names the issuer and subject; the account's other sessions and API
    tokens end):

    - signed in already (`current`, "prove my identity"): that account, if its ID number
      is the proven one; another number is refused and nothing changes;
    - an account linked to this issuer + subject before: that account;
    - else a proven account (window or OIDC) with the ID number: that account, linked;
    - else a new resident account at the provider's level. Self-declared accounts that
      claim the same number (registration does not refuse a number already claimed) are
      left as they are: nothing showed that whoever registered them is this person, so
      the proven person does not inherit them (nor their password) and they stay at the
      lowest level, where they see nothing bound to the number. The proven person wins
      without having to know them; one who registered before signs in to that account
      first and proves it from "我的身份核验" (the first case above).
    """
    if current is not None:
        if current.role != Role.RESIDENT or current.id_number != proven.id_number:
            raise PermissionDenied(
                "统一身份认证平台核验的身份证号码与当前账户登记的号码不一致，未作任何更改",
                type="oidc-identity-mismatch",
            )
        return _raise(
            session,
            current,
            proven,
            assurance.Action.OIDC_LOGIN,
            "本人通过统一身份认证平台核验身份",
        )
    link = session.scalar(
        select(ExternalIdentity).where(
            ExternalIdentity.issuer == proven.issuer, ExternalIdentity.subject == proven.subject
        )
    )
    if link is not None:
        account = session.get(Account, link.account_id)
        if account is None or account.id_number != proven.id_number or not account.is_active:
            raise PermissionDenied(
                "该统一身份认证账号关联的平台账户不可用，请到政务服务窗口处理",
                type="oidc-link-unusable",
            )
        return _raise(
            session, account, proven, assurance.Action.OIDC_LOGIN, "通过统一身份认证平台登录"
        )
    proven_holders = [
        a
        for a in assurance.accounts_by_identifier(session, Role.RESIDENT, proven.id_number)
        if a.is_active and assurance.is_proven(a)
    ]
    if proven_holders:
        return _raise(
            session,
            proven_holders[0],
            proven,
            assurance.Action.OIDC_LOGIN,
            "通过统一身份认证平台登录",
        )
    return _create(session, proven)


def _raise(
    session: Session, account: Account, proven: ProvenIdentity, action: str, reason: str
) -> Account:
    _link(session, account, proven)
    assurance.change_assurance(
        session,
        account,
        proven.level,
        action=action,
        actor=None,
        reason=reason,
        evidence={"provider": proven.provider, "issuer": proven.issuer, "sub": proven.subject},
    )
    return account


def _link(session: Session, account: Account, proven: ProvenIdentity) -> None:
    link = session.scalar(
        select(ExternalIdentity).where(
            ExternalIdentity.issuer == proven.issuer, ExternalIdentity.subject == proven.subject
        )
    )
    if link is None:
        link = ExternalIdentity(account_id=account.id, issuer=proven.issuer, subject=proven.subject)
        session.add(link)
    link.last_login_at = utcnow()
    session.flush()


def _create(session: Session, proven: ProvenIdentity) -> Account:
    from tongban.identity.service import create_account
    from tongban.regions import service as regions

    city_code: str | None = area_city_code(proven.id_number)
    jurisdiction: str | None = None
    try:
        city = regions.get_city(session, str(city_code))
        jurisdiction = city.jurisdiction_code
    except NotFound:
        city_code = None
    digest = hashlib.sha256(f"{proven.issuer}|{proven.subject}".encode()).hexdigest()[:16]
    account = create_account(
        session,
        username=f"oidc_{digest}",
        # Never told to anyone (sign-in is through the provider); the suffix only meets
        # the password policy's character-class rule whatever the random draw.
        password=secrets.token_urlsafe(32) + "-1",
        role=Role.RESIDENT,
        display_name=proven.name or "居民",
        id_number=proven.id_number,
        jurisdiction_code=jurisdiction,
        city_code=city_code,
        assurance_level=proven.level,
        assurance_reason=f"通过统一身份认证平台（{proven.provider}）首次登录时创建",
        assurance_evidence={
            "provider": proven.provider,
            "issuer": proven.issuer,
            "sub": proven.subject,
        },
    )
    _link(session, account, proven)
    return account
