"""A real OpenID Provider for the tests, run as its own process on 127.0.0.1.

The protocol is IdentityPython's `pyop` (the OP library behind SATOSA): it parses and
validates authentication requests, issues authorization codes, checks client
authentication and PKCE at the token endpoint, and signs ID tokens (RS256) with a key
it publishes as a JWKS. This file only puts it behind HTTP (Starlette + uvicorn) with a
login form, the way a provincial unified identity platform would sit in front of it.

It serves HTTPS only (pyop refuses an issuer that is not https), with a certificate the
test makes. Configuration comes as JSON in OIDC_OP_CONFIG:
{"issuer": "https://127.0.0.1:<port>", "port": <port>, "certfile": …, "keyfile": …,
 "clients": {"<client_id>": {"client_secret": "...", "redirect_uris": ["..."]}},
 "users": {"<username>": {"password": "...", "claims": {"sub": "...", "name": "...",
                                                        "id_number": "..."}}}}
"""

from __future__ import annotations

import html
import json
import os
import secrets

import uvicorn
from Cryptodome.PublicKey import RSA
from jwkest.jwk import RSAKey
from oic.oic.message import AuthorizationRequest
from pyop.authz_state import AuthorizationState
from pyop.exceptions import (
    BearerTokenError,
    InvalidAccessToken,
    InvalidAuthenticationRequest,
    InvalidClientAuthentication,
    OAuthError,
)
from pyop.provider import Provider
from pyop.subject_identifier import HashBasedSubjectIdentifierFactory
from pyop.userinfo import Userinfo
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Route

CONFIG = json.loads(os.environ["OIDC_OP_CONFIG"])
ISSUER: str = CONFIG["issuer"]
KID = "op-signing-key"

signing_key = RSAKey(key=RSA.generate(2048), alg="RS256", kid=KID)
provider = Provider(
    signing_key,
    {
        "issuer": ISSUER,
        "authorization_endpoint": ISSUER + "/authorize",
        "token_endpoint": ISSUER + "/token",
        "userinfo_endpoint": ISSUER + "/userinfo",
        "jwks_uri": ISSUER + "/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_parameter_supported": True,
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code"],
    },
    AuthorizationState(HashBasedSubjectIdentifierFactory(secrets.token_hex(16))),
    {
        client_id: {
            "client_secret": c["client_secret"],
            "redirect_uris": c["redirect_uris"],
            "response_types": ["code"],
            "token_endpoint_auth_method": c.get("auth_method", "client_secret_basic"),
        }
        for client_id, c in CONFIG["clients"].items()
    },
    Userinfo({name: u["claims"] for name, u in CONFIG["users"].items()}),
    # A provider-specific scope whose claim is answered at the userinfo endpoint.
    extra_scopes={"idcard": ["id_number"]},
)


def _error(e: Exception, status: int = 400) -> JSONResponse:
    code = getattr(e, "oauth_error", None) or "invalid_request"
    return JSONResponse({"error": code, "error_description": str(e)}, status_code=status)


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def configuration(request: Request) -> JSONResponse:
    return JSONResponse(provider.provider_configuration.to_dict())


async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(provider.jwks)


def _parse(query: str) -> AuthorizationRequest:
    return provider.parse_authentication_request(query)


async def authorize(request: Request) -> HTMLResponse | RedirectResponse | JSONResponse:
    """GET: validate the request and show the login form; POST: authenticate the user
    and redirect back to the client with a code."""
    if request.method == "GET":
        query = request.url.query
        try:
            _parse(query)
        except (InvalidAuthenticationRequest, OAuthError, ValueError) as e:
            return _error(e)
        return HTMLResponse(
            "<!doctype html><title>统一身份认证</title><form method=post action=/authorize>"
            f'<input type=hidden name=q value="{html.escape(query)}">'
            "<input name=username><input name=password type=password>"
            "<button>登录</button></form>"
        )
    form = await request.form()
    query = str(form.get("q", ""))
    try:
        authn_req = _parse(query)
    except (InvalidAuthenticationRequest, OAuthError, ValueError) as e:
        return _error(e)
    user = CONFIG["users"].get(str(form.get("username", "")))
    if user is None or user["password"] != form.get("password"):
        return HTMLResponse("用户名或密码错误", status_code=401)
    response = provider.authorize(authn_req, str(form["username"]))
    return RedirectResponse(response.request(authn_req["redirect_uri"], False), status_code=302)


async def token(request: Request) -> JSONResponse:
    body = (await request.body()).decode()
    try:
        answer = provider.handle_token_request(body, request.headers)
    except InvalidClientAuthentication as e:
        return _error(e, 401)
    except (OAuthError, ValueError, KeyError) as e:
        return _error(e)
    return JSONResponse(answer.to_dict(), headers={"Cache-Control": "no-store"})


async def userinfo(request: Request) -> JSONResponse:
    body = (await request.body()).decode() if request.method == "POST" else request.url.query
    try:
        answer = provider.handle_userinfo_request(body, request.headers)
    except (BearerTokenError, InvalidAccessToken) as e:
        return _error(e, 401)
    return JSONResponse(answer.to_dict())


app = Starlette(
    routes=[
        Route("/healthz", healthz),
        Route("/.well-known/openid-configuration", configuration),
        Route("/jwks", jwks),
        Route("/authorize", authorize, methods=["GET", "POST"]),
        Route("/token", token, methods=["POST"]),
        Route("/userinfo", userinfo, methods=["GET", "POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(CONFIG["port"]),
        log_level="warning",
        ssl_certfile=CONFIG["certfile"],
        ssl_keyfile=CONFIG["keyfile"],
    )
