"""Client token uses kept in Redis, so that every replica of a fleet counts and scopes a token alike.

The same interface as `gateway.api.token_uses.LocalTokenUses`: how many calls a token has created (its
`max_calls`), and which (a client token reaches only those). Without it, a token could create `max_calls` calls
on each replica, and its follow-ups would be refused (`out_of_scope`) by every replica but the one that created
the call. Keys `gateway:token:<id>:claimed` and `:calls` expire with the token.
"""

from __future__ import annotations

from gateway.fleet.registry import PREFIX, Registry

# Bind the call to the token; its set lives as long as the token's claim counter (which expires with the token).
_BIND = """
redis.call('SADD', KEYS[2], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
"""


class SharedTokenUses:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    async def claim(self, token_id: str, max_calls: int, expires_at: float) -> bool:
        claimed, calls = _keys(token_id)
        count, _ = await self._registry.send(
            lambda pipe: (pipe.incr(claimed), pipe.pexpireat(claimed, int(expires_at * 1000))))
        if count <= max_calls:
            return True
        await self._registry.send(lambda pipe: pipe.decr(claimed))
        return False

    async def release(self, token_id: str) -> None:
        claimed, _ = _keys(token_id)
        await self._registry.send(lambda pipe: pipe.decr(claimed))

    async def bind(self, token_id: str, call_id: str) -> None:
        await self._registry.send(lambda pipe: pipe.eval(_BIND, 2, *_keys(token_id), call_id))

    async def owns(self, token_id: str, call_id: str) -> bool:
        _, calls = _keys(token_id)
        [member] = await self._registry.send(lambda pipe: pipe.sismember(calls, call_id))
        return bool(member)


def _keys(token_id: str) -> tuple[str, str]:
    return f"{PREFIX}token:{token_id}:claimed", f"{PREFIX}token:{token_id}:calls"
