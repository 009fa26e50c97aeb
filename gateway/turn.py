"""Per-call TURN credentials in the TURN REST API convention (coturn's `use-auth-secret`).

The gateway and coturn share one secret. A credential is a username `<expiry unix time>:<call or token id>` and
its password base64(HMAC-SHA1(secret, username)): coturn recomputes the password, so nothing is stored, and
refuses a username whose time has passed. Each caller gets its own, valid for that caller only so long, instead
of one static TURN password that every caller would share. coturn checks the time when an allocation is
made; an allocation it has accepted may be refreshed beyond it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from gateway.config import Settings

GATEWAY_USER_PREFIX = "gateway."


def turn_credentials(secret: str, user: str, ttl_s: float, now: float | None = None) -> tuple[str, str]:
    """(username, password) for `user`, valid for `ttl_s` from `now` (a negative ttl makes expired ones)."""
    expiry = int((time.time() if now is None else now) + ttl_s)
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(settings: Settings, user: str, *, ttl_s: float | None = None,
                now: float | None = None) -> list[dict[str, Any]]:
    """The RTCIceServer dicts a caller gets for `user` (a call or token id), valid for `ttl_s` (default
    GATEWAY_TURN_TTL_SECONDS, else the longest call: a resume late in a call uses them); none without a secret."""
    if not settings.turn_secret:
        return []
    ttl_s = ttl_s or settings.turn_ttl_s or settings.max_call_s
    username, password = turn_credentials(settings.turn_secret, user, ttl_s, now)
    return [{"urls": list(settings.turn_urls), "username": username, "credential": password}]


def gateway_ice_servers(settings: Settings, call_id: str) -> list[dict[str, Any]]:
    """The gateway's own servers for a call: its per-call TURN credentials first (aiortc uses only the first
    turn: URL it finds), then GATEWAY_ICE_SERVERS. Its user is `gateway.<call id>` (call ids have no dots), so
    coturn's logs and quotas tell the gateway's side of a call from the caller's."""
    return [*ice_servers(settings, f"{GATEWAY_USER_PREFIX}{call_id}"), *settings.ice_servers]


def ice_server_links(servers: list[dict[str, Any]]) -> list[str]:
    """`Link` header values for an SDP answer, one per URL (WHIP, RFC 9725 section 4.4)."""
    links = []
    for server in servers:
        urls = server["urls"] if isinstance(server["urls"], list) else [server["urls"]]
        for url in urls:
            links.append(f'<{url}>; rel="ice-server"; username="{server["username"]}"; '
                         f'credential="{server["credential"]}"; credential-type="password"')
    return links
