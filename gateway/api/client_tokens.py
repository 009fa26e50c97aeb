"""Client tokens: short-lived, signed grants a backend mints for one browser (POST /v1/tokens).

A client token is an HS256 JWT (PyJWT) whose header names the key that signed it (`kid`), so keys can be
rotated: the first key of GATEWAY_TOKEN_KEYS signs, every key verifies, and a token of a key that is gone is
refused. Its claims say what it may do: `profile`, `max_calls`, `metadata` for the calls it creates, `exp`,
and a unique `jti` by which its uses are counted. Nothing about it is stored at minting.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

from gateway.config import Settings
from gateway.errors import GatewayError

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
LOCAL_KID = "local"  # the key made at start-up when GATEWAY_TOKEN_KEYS is not set


@dataclass(frozen=True)
class ClientToken:
    """The verified claims of a client token."""

    id: str
    profile: str
    max_calls: int
    expires_at: int  # unix time
    metadata: Mapping[str, Any] = field(default_factory=dict)


class TokenSigner:
    """Mints and verifies client tokens with `keys` (key id -> secret; the first signs)."""

    def __init__(self, keys: Sequence[tuple[str, str]], clock: Callable[[], float] = time.time) -> None:
        if not keys:
            raise ValueError("a token signer needs at least one key")
        self._signing_kid = keys[0][0]
        self._keys = dict(keys)
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenSigner:
        keys = [tuple(entry.split(":", 1)) for entry in settings.token_keys]
        if not keys:
            log.info("GATEWAY_TOKEN_KEYS is not set: client tokens are signed with a key made at start-up, "
                        "valid on this process only (set it for several replicas, or to keep tokens across restarts)")
            keys = [(LOCAL_KID, secrets.token_urlsafe(32))]
        return cls(keys)  # type: ignore[arg-type]

    def mint(self, profile: str, ttl_s: float, max_calls: int, metadata: Mapping[str, Any]) -> tuple[str, ClientToken]:
        now = int(self._clock())
        claims = ClientToken(secrets.token_urlsafe(12), profile, max_calls, now + max(1, round(ttl_s)), dict(metadata))
        payload = {"jti": claims.id, "iat": now, "exp": claims.expires_at, "profile": profile,
                   "max_calls": max_calls, "metadata": claims.metadata}
        token = jwt.encode(payload, self._keys[self._signing_kid], algorithm=ALGORITHM,
                           headers={"kid": self._signing_kid})
        return token, claims

    def verify(self, token: str) -> ClientToken:
        """The token's claims; 401 `token_expired` past its expiry, 403 `forbidden` for anything else wrong."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError:
            raise _refused("the token is not accepted") from None
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise _refused("the client token was signed with a key this gateway does not have (rotated out?)")
        try:
            payload = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["exp", "iat", "jti"]},
                                 leeway=0)
        except jwt.ExpiredSignatureError:
            raise GatewayError(401, "token_expired", "the client token has expired; get a new one",
                               {"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
        except jwt.InvalidTokenError:
            raise _refused("the client token's signature or claims do not verify") from None
        claims = _claims(payload)
        if claims is None:
            raise _refused("the client token's claims are not what this gateway mints")
        return claims


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated parts: a bearer that is no API token is taken for a client token."""
    return token.count(".") == 2


def _claims(payload: Mapping[str, Any]) -> ClientToken | None:
    jti, profile, max_calls = payload.get("jti"), payload.get("profile"), payload.get("max_calls")
    metadata = payload.get("metadata", {})
    if not (isinstance(jti, str) and isinstance(profile, str) and isinstance(metadata, dict)):
        return None
    if not isinstance(max_calls, int) or isinstance(max_calls, bool) or max_calls < 1:
        return None
    return ClientToken(jti, profile, max_calls, int(payload["exp"]), metadata)


def _refused(message: str) -> GatewayError:
    return GatewayError(403, "forbidden", message)
