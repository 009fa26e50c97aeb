"""Who may do what on `/v1/*` and `/whip`: API tokens, client tokens and resume tokens (README "Access").

- An **API token** (GATEWAY_API_TOKENS, for backends and bridges) may do everything, within its optional
  profile list; it is the only credential that mints client tokens. With none configured the API is open.
- A **client token** (POST /v1/tokens) may create `max_calls` calls of its profile until it expires, follow up
  on those calls (GET, DELETE, PATCH, events, resume) and list its profile; nothing else.
- A call's **resume token** may follow up on that call only, as `Authorization: Bearer` or where a resume
  carries it; a resume is authorised by its resume token alone, so a caller whose client token has expired
  can still come back to its call.

Every refusal is a JSON error: 401 when the credential is missing or expired (get one), 403 when it is not
accepted or does not allow this. Credentials never reach a log line: they are named by kind and id.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.api.bodies import json_object
from gateway.api.client_tokens import ClientToken, TokenSigner, looks_like_jwt
from gateway.api.errors import Handler
from gateway.api.keys import CALLS
from gateway.api.metadata import check_metadata
from gateway.api.token_uses import TokenUses
from gateway.config import Settings, split_api_token
from gateway.errors import GatewayError

log = logging.getLogger(__name__)

DEFAULT_PROFILE = "default"
_CALL_PATH = re.compile(r"^/v1/calls/([^/]+)(?:/.*)?$")


@dataclass(frozen=True)
class Grant:
    """What the request's credential allows."""

    who: str  # names the credential in logs and rate limits, never by its secret
    profiles: frozenset[str] | None = None  # profiles new calls (and minted tokens) may use; None = any
    client: ClientToken | None = None  # a client token's claims
    call_id: str | None = None  # a resume token: this call's follow-ups only
    counted: bool = True  # keyed in the rate limit (an open API and a resume are keyed by address only)


GRANT = web.RequestKey("grant", Grant)  # what the request's credential allows
OPEN = Grant("open", counted=False)
RESUME = Grant("resume", counted=False)  # a resume request, whose resume token the call manager checks


class Access:
    """The gateway's credentials: its API tokens, the client-token signer and the record of token uses."""

    def __init__(self, settings: Settings, signer: TokenSigner, uses: TokenUses) -> None:
        self.api_tokens = [(token.encode(), profiles) for token, profiles in map(split_api_token, settings.api_tokens)]
        self.signer = signer
        self.uses = uses

    @property
    def open(self) -> bool:
        return not self.api_tokens

    async def grant(self, request: web.Request) -> Grant:
        """The request's credential, or a 401/403."""
        scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
        bearer = bearer.strip() if scheme.lower() == "bearer" else ""
        for index, (token, profiles) in enumerate(self.api_tokens, 1):
            if bearer and hmac.compare_digest(bearer.encode(), token):
                return Grant(f"api-token-{index}", profiles)
        if bearer and looks_like_jwt(bearer):
            client = self.signer.verify(bearer)
            return Grant(f"client-token-{client.id}", frozenset({client.profile}), client=client)
        call_id = call_id_of(request.path)
        if bearer and call_id and _is_resume_token(request, call_id, bearer):
            return Grant(f"resume-token-{call_id}", call_id=call_id, counted=False)
        if self.open:
            return OPEN  # an open API ignores other bearers, as it always has
        if not bearer:
            raise GatewayError(401, "unauthorized", "send 'Authorization: Bearer <token>'",
                               {"WWW-Authenticate": "Bearer"})
        raise GatewayError(403, "forbidden", "the token is not accepted")


ACCESS = web.AppKey("access", Access)


def access_control(access: Access) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Middleware: every API request gets its Grant (`request[GRANT]`), or a 401/403."""

    @web.middleware
    async def check_access(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS" or not is_api_path(request.path):
            return await handler(request)
        resume = await is_resume(request)
        try:
            grant = await access.grant(request)
        except GatewayError as refusal:
            if not resume:
                log.info("refused %s %s: %s", request.method, request.path, refusal.code)
                raise
            grant = RESUME
        request[GRANT] = grant
        await _check_scope(access, request, grant, resume)
        if grant.client is not None and not resume and is_new_call(request):
            return await _counted(access.uses, grant.client, request, handler)
        return await handler(request)

    return check_access


def call_terms(request: web.Request, profile: str | None, metadata: Any) -> tuple[str | None, dict[str, Any]]:
    """The profile and metadata a new call gets under the request's credential. A client token's profile is
    the default and its metadata wins over the caller's; a profile the credential may not use is a 403."""
    grant = request.get(GRANT, OPEN)
    metadata = check_metadata(metadata)
    if grant.client is not None:
        profile = profile or grant.client.profile
        metadata = {**metadata, **grant.client.metadata}
    check_profile(grant, profile or DEFAULT_PROFILE)
    return profile, metadata


def check_profile(grant: Grant, name: str) -> None:
    if grant.profiles is not None and name not in grant.profiles:
        raise GatewayError(403, "profile_not_allowed", f"this token may not use profile {name!r}")


def visible_profiles(request: web.Request, names: list[str]) -> list[str]:
    """The profiles the request's credential may use, of `names`."""
    allowed = request.get(GRANT, OPEN).profiles
    return [name for name in names if allowed is None or name in allowed]


def is_api_path(path: str) -> bool:
    return path.startswith("/v1/") or path == "/whip"


def is_new_call(request: web.Request) -> bool:
    return request.method == "POST" and request.path in ("/v1/calls", "/whip")


async def is_resume(request: web.Request) -> bool:
    """A `POST /v1/calls` that resumes a call: JSON with `"resume"`, or the SDP form's `?resume=`."""
    if request.method != "POST" or request.path != "/v1/calls":
        return False
    if "resume" in request.query:
        return True
    if request.content_type != "application/json":
        return False
    try:
        return "resume" in await json_object(request)  # aiohttp keeps the body for the handler
    except GatewayError:
        return False  # the handler says what is wrong with it


def call_id_of(path: str) -> str | None:
    match = _CALL_PATH.match(path)
    return match.group(1) if match else None


def _is_resume_token(request: web.Request, call_id: str, bearer: str) -> bool:
    """Is `bearer` the resume token of this call, in progress or remembered after its end?"""
    try:
        call = request.app[CALLS].lookup(call_id)
    except GatewayError:
        return False
    return hmac.compare_digest(call.resume_token.encode(), bearer.encode())


async def _check_scope(access: Access, request: web.Request, grant: Grant, resume: bool) -> None:
    """A resume token reaches only its call; a client token its calls, new calls and the profile list."""
    call_id = call_id_of(request.path)
    if grant.call_id is not None:
        if call_id != grant.call_id:
            raise _out_of_scope(request, grant, "a resume token reaches only its own call")
        return
    if grant.client is None or resume or is_new_call(request) or request.path == "/v1/profiles":
        return
    if request.path == "/v1/tokens":
        raise _out_of_scope(request, grant, "a client token cannot mint tokens; an API token can")
    if call_id is None or not await access.uses.owns(grant.client.id, call_id):
        raise _out_of_scope(request, grant, "a client token reaches only the calls it created")


def _out_of_scope(request: web.Request, grant: Grant, message: str) -> GatewayError:
    log.info("refused %s %s to %s: out of scope", request.method, request.path, grant.who)
    return GatewayError(403, "out_of_scope", message)


async def _counted(uses: TokenUses, token: ClientToken, request: web.Request, handler: Handler) -> web.StreamResponse:
    """Create a call on one of the token's `max_calls`; a request that creates none gives it back."""
    if not await uses.claim(token.id, token.max_calls, token.expires_at):
        log.info("refused a call to client token %s: its %d calls are used", token.id, token.max_calls)
        raise GatewayError(403, "token_used_up", f"this client token has created its {token.max_calls} call(s)")
    try:
        response = await handler(request)
    except Exception:
        await uses.release(token.id)
        raise
    call_id = call_id_of(response.headers.get("Location", "")) if response.status == 201 else None
    if call_id is None:
        await uses.release(token.id)
    else:
        await uses.bind(token.id, call_id)
        log.info("call %s: created with client token %s", call_id, token.id)
    return response
