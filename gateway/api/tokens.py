"""`POST /v1/tokens`: a backend (with an API token) mints a client token for one browser."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from gateway.api.access import ACCESS, DEFAULT_PROFILE, GRANT, check_profile
from gateway.api.bodies import json_object
from gateway.api.keys import SETTINGS
from gateway.api.metadata import check_metadata
from gateway.errors import GatewayError
from gateway.turn import ice_servers

log = logging.getLogger(__name__)

MAX_CALLS_PER_TOKEN = 100
FIELDS = {"profile", "ttl_s", "max_calls", "metadata"}

routes = web.RouteTableDef()


@routes.post("/v1/tokens")
async def mint_token(request: web.Request) -> web.StreamResponse:
    """`{"profile"?, "ttl_s"?, "max_calls"?, "metadata"?}` -> 201 `{"token", "token_id", "expires_at",
    "ice_servers"}` (TURN credentials for the page's first peer connection, valid as long as the token)."""
    settings = request.app[SETTINGS]
    if request.content_type != "application/json":
        raise GatewayError(415, "unsupported_media_type", f"send application/json, not {request.content_type!r}")
    body = await json_object(request)
    if unknown := sorted(set(body) - FIELDS):
        raise GatewayError(400, "bad_request", f"unknown field {unknown[0]!r}; a token takes {sorted(FIELDS)}")
    profile = body.get("profile", DEFAULT_PROFILE)
    if not isinstance(profile, str) or profile not in settings.profiles:
        raise GatewayError(400, "unknown_profile", f"no profile {profile!r}; see GET /v1/profiles")
    grant = request[GRANT]
    check_profile(grant, profile)
    ttl_s = body.get("ttl_s", settings.token_ttl_s)
    if not _number(ttl_s) or not 0 < ttl_s <= settings.token_max_ttl_s:
        raise GatewayError(400, "bad_request", f'"ttl_s" must be a number of seconds, above 0 and at most '
                                               f"{settings.token_max_ttl_s:.0f}")
    max_calls = body.get("max_calls", 1)
    if not _number(max_calls) or not isinstance(max_calls, int) or not 1 <= max_calls <= MAX_CALLS_PER_TOKEN:
        raise GatewayError(400, "bad_request", f'"max_calls" must be a whole number from 1 to {MAX_CALLS_PER_TOKEN}')
    metadata = check_metadata(body.get("metadata", {}))
    token, claims = request.app[ACCESS].signer.mint(profile, ttl_s, max_calls, metadata)
    log.info("client token %s minted by %s: profile %s, %.0f s, up to %d calls", claims.id, grant.who, profile,
             ttl_s, max_calls)
    turn = ice_servers(settings, claims.id, ttl_s=ttl_s)
    return web.json_response({"token": token, "token_id": claims.id, "expires_at": claims.expires_at,
                              "ice_servers": turn}, status=201)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
