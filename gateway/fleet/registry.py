"""The fleet's shared registry in Redis: which replicas are up, and which one holds each call.

Keys, all under `gateway:`:
- `replica:<id>`: hash {url, calls, max_calls, draining}; expires REPLICA_TTL_S after the replica's last heartbeat,
  so a replica that dies (even by SIGKILL) is known to be gone within seconds.
- `replicas`: the set of replica ids (a member whose hash has expired is pruned when the set is read).
- `call:<id>`: hash {owner, handoff (JSON)} while the call lives, {owner, ended (JSON snapshot)} once it ended;
  while it lives it expires `call_ttl_s` after its owner's last heartbeat (the caller's grace window, counted from
  the owner's death). `call:<id>:events`: its events history (compact JSON, newest last), appended as it grows.
- `secret`: shared by the replicas; marks the requests one replica forwards to another.

Each write to a call's record runs in Lua and is fenced by its owner, so a replica that lost a call (another took
it over) cannot overwrite it, and a takeover is atomic: of two replicas racing, one wins. The scripts read keys
they are not passed (the owner's replica hash): standalone Redis, or a primary with replicas, not Redis Cluster.
Every command has a deadline: a Redis that stops answering makes the fleet unavailable, it never hangs a request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from redis.asyncio.client import Pipeline
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError
from redis.retry import Retry

from gateway.fleet import FleetUnavailable

log = logging.getLogger(__name__)

PREFIX = "gateway:"
REPLICA_PREFIX = PREFIX + "replica:"
REPLICAS = PREFIX + "replicas"
SECRET = PREFIX + "secret"
COMMAND_TIMEOUT_S = 1.0
REPLICA_TTL_S = 3.0  # heartbeats come every second: three missed ones and the replica is gone

_HEARTBEAT = """
redis.call('HSET', KEYS[1], 'url', ARGV[2], 'calls', ARGV[3], 'max_calls', ARGV[4], 'draining', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[8], 'NX')
local lost, missing = {}, {}
for i = 4, #KEYS do
  local owner = redis.call('HGET', KEYS[i], 'owner')
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[7])
    redis.call('PEXPIRE', KEYS[i] .. ':events', ARGV[7])
  elseif owner then table.insert(lost, KEYS[i])
  else table.insert(missing, KEYS[i]) end
end
return {lost, missing}
"""

# ARGV: the owner, the handoff ('' if unchanged), ttl (ms), history size, 1 to replace the history, new events...
_PUBLISH = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'handoff', ARGV[2]) end
if ARGV[5] == '1' then redis.call('DEL', KEYS[2]) end
if #ARGV > 5 then
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 6))
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""

# ARGV: the owner it must have, the ended snapshot ('' to delete the record), how long to keep it (ms),
# whether that owner must be gone (an orphan hung up by another replica), the replicas' prefix, and the call's
# whole events history, if given (it ends with `ended`).
_END = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner ~= ARGV[1] then return 0 end
if ARGV[4] == '1' and redis.call('EXISTS', ARGV[5] .. owner) == 1 then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1], KEYS[2]) return 1 end
redis.call('HSET', KEYS[1], 'ended', ARGV[2])
redis.call('HDEL', KEYS[1], 'handoff')
if #ARGV > 5 then
  redis.call('DEL', KEYS[2])
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 6))
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""

_LOOKUP = """
local record = redis.call('HMGET', KEYS[1], 'owner', 'handoff', 'ended')
if not record[1] then return false end
local replica = redis.call('HMGET', ARGV[1] .. record[1], 'url', 'calls', 'max_calls', 'draining')
return {record[1], record[2], record[3], replica[1], replica[2], replica[3], replica[4]}
"""

# The call becomes ARGV[1]'s if it still belongs to ARGV[2] and that replica is gone or draining.
_CLAIM = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner ~= ARGV[2] or redis.call('HEXISTS', KEYS[1], 'ended') == 1 then return 0 end
if redis.call('HGET', ARGV[3] .. owner, 'draining') == '0' then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""


@dataclass(frozen=True)
class Replica:
    id: str
    url: str
    calls: int
    max_calls: int
    draining: bool

    @property
    def has_room(self) -> bool:
        return not self.draining and self.calls < self.max_calls


Final = tuple[Mapping[str, Any], Sequence[str]]  # an ended call's snapshot and whole events history


@dataclass(frozen=True)
class CallChange:
    """What to write for one call: its handoff if it changed, events new since the last write (or, with
    `replace`, its whole history)."""

    handoff: Mapping[str, Any] | None
    events: Sequence[str]
    upto: int  # how many events the call had sent by the last of these
    replace: bool = False


@dataclass(frozen=True)
class CallRecord:
    call_id: str
    owner_id: str
    owner: Replica | None  # None: the owner's heartbeat has expired, it is gone
    handoff: dict[str, Any] | None  # while the call lives
    ended: dict[str, Any] | None  # its final snapshot, once it ended


def _call_key(call_id: str) -> str:
    return f"{PREFIX}call:{call_id}"


def _call_keys(call_id: str) -> list[str]:
    return [_call_key(call_id), _call_key(call_id) + ":events"]


def _call_id(key: str) -> str:
    return key.removeprefix(f"{PREFIX}call:")


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


Build = Callable[[Pipeline], object]


class Registry:
    """One replica's view of the registry; `connect()` makes one, `close()` ends it."""

    def __init__(self, client: redis.Redis, replica_id: str) -> None:
        self._redis = client
        self.replica_id = replica_id
        self.secret = ""
        self.round_trips = 0  # pipelines sent to Redis, for /metrics and `make bench`
        self.commands = 0  # commands in them
        self._shas: dict[str, str] = {}

    @classmethod
    async def connect(cls, url: str, replica_id: str) -> Registry:
        """Reach Redis (FleetUnavailable if it does not answer) and join the fleet's shared secret."""
        client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=COMMAND_TIMEOUT_S,
                                      socket_connect_timeout=COMMAND_TIMEOUT_S, retry=Retry(NoBackoff(), 0))
        registry = cls(client, replica_id)
        try:
            await registry._load_scripts()
            _, registry.secret = await registry._send(
                lambda pipe: (pipe.set(SECRET, secrets.token_urlsafe(24), nx=True), pipe.get(SECRET)))
        except FleetUnavailable:
            await client.aclose()
            raise
        return registry

    async def close(self) -> None:
        await self._redis.aclose()

    async def heartbeat(self, replica: Replica, owned: Sequence[str], call_ttl_s: float) -> tuple[list[str], list[str]]:
        """Say this replica is up (its url and load), keep its calls' records alive.

        Returns the calls another replica owns now (lost) and those whose record is gone (to write again)."""
        keys = [REPLICA_PREFIX + replica.id, REPLICAS, SECRET, *map(_call_key, owned)]
        args = [replica.id, replica.url, replica.calls, replica.max_calls, int(replica.draining),
                _ms(REPLICA_TTL_S), _ms(call_ttl_s), self.secret]  # the secret again, if Redis lost it
        [(lost, missing)] = await self._send(lambda pipe: self._script(pipe, _HEARTBEAT, keys, args))
        return [_call_id(k) for k in lost], [_call_id(k) for k in missing]

    async def publish(self, changes: Mapping[str, CallChange], call_ttl_s: float, history_size: int,
                      ended: Mapping[str, Final | None], keep_ended_s: float) -> list[str]:
        """Write what changed in the calls this replica holds, and the snapshots of those that ended, in one round
        trip; returns the calls whose record another replica owns now (nothing was written for them)."""

        def build(pipe: Pipeline) -> None:
            for call_id, change in changes.items():
                handoff = json.dumps(change.handoff) if change.handoff is not None else ""
                args = [self.replica_id, handoff, _ms(call_ttl_s), history_size, int(change.replace), *change.events]
                self._script(pipe, _PUBLISH, _call_keys(call_id), args)
            for call_id, final in ended.items():
                snapshot, events = final if final is not None else (None, ())
                body = json.dumps(snapshot) if snapshot is not None else ""
                args = [self.replica_id, body, _ms(keep_ended_s), 0, REPLICA_PREFIX, *events]
                self._script(pipe, _END, _call_keys(call_id), args)

        results = await self._send(build)
        return [call_id for call_id, written in zip(changes, results) if not written]

    async def events(self, call_id: str) -> list[str]:
        """The call's events history, as its owner last wrote it."""
        [messages] = await self._send(lambda pipe: pipe.lrange(_call_keys(call_id)[1], 0, -1))
        return messages

    async def lookup(self, call_id: str) -> CallRecord | None:
        """Who holds `call_id`, whether that replica is up, and what it stored; None if no replica knows it."""
        [found] = await self._send(lambda pipe: self._script(pipe, _LOOKUP, [_call_key(call_id)], [REPLICA_PREFIX]))
        if not found:
            return None
        owner_id, handoff, ended, url, calls, max_calls, draining = found
        owner = Replica(owner_id, url, int(calls or 0), int(max_calls or 0), draining == "1") if url else None
        return CallRecord(call_id, owner_id, owner, _json(handoff), _json(ended))

    async def claim(self, call_id: str, from_owner: str, call_ttl_s: float) -> bool:
        """Make this replica the owner, if `from_owner` still is and is gone or draining (atomic)."""
        args = [self.replica_id, from_owner, REPLICA_PREFIX, _ms(call_ttl_s)]
        [won] = await self._send(lambda pipe: self._script(pipe, _CLAIM, [_call_key(call_id)], args))
        return bool(won)

    async def end_orphan(self, call_id: str, owner_id: str, snapshot: Mapping[str, Any], keep_s: float) -> bool:
        """Mark ended a call whose owner is gone (a hang-up that reached another replica)."""
        args = [owner_id, json.dumps(snapshot), _ms(keep_s), 1, REPLICA_PREFIX]
        [done] = await self._send(lambda pipe: self._script(pipe, _END, _call_keys(call_id), args))
        return bool(done)

    async def replicas(self) -> list[Replica]:
        """The replicas that are up (pruning those whose heartbeat has expired)."""
        [ids] = await self._send(lambda pipe: pipe.smembers(REPLICAS))
        ids = sorted(ids)
        rows = await self._send(
            lambda pipe: [pipe.hmget(REPLICA_PREFIX + i, "url", "calls", "max_calls", "draining") for i in ids])
        found, gone = [], []
        for replica_id, (url, calls, max_calls, draining) in zip(ids, rows):
            if url is None:
                gone.append(replica_id)
            else:
                found.append(Replica(replica_id, url, int(calls), int(max_calls), draining == "1"))
        if gone:
            await self._send(lambda pipe: pipe.srem(REPLICAS, *gone))
        return found

    async def leave(self) -> None:
        """This replica is stopping: the others know at once rather than after its heartbeat expires."""
        me = self.replica_id
        await self._send(lambda pipe: (pipe.delete(REPLICA_PREFIX + me), pipe.srem(REPLICAS, me)))

    def _script(self, pipe: Pipeline, script: str, keys: Sequence[str], args: Sequence[Any]) -> None:
        pipe.evalsha(self._shas[script], len(keys), *keys, *args)

    async def _load_scripts(self) -> None:
        scripts = (_HEARTBEAT, _PUBLISH, _END, _LOOKUP, _CLAIM)
        shas = await self._send(lambda pipe: [pipe.script_load(script) for script in scripts], reload=False)
        self._shas = dict(zip(scripts, shas))

    async def send(self, build: Build) -> list[Any]:
        """One round trip of plain commands (no script of the registry's), with the same deadline."""
        return await self._execute(build)

    async def _send(self, build: Build, *, reload: bool = True) -> list[Any]:
        """One round trip: the commands `build` queues. A Redis that restarted has forgotten the scripts: they
        are loaded again and the commands sent once more."""
        try:
            return await self._execute(build)
        except NoScriptError:
            if not reload:
                raise FleetUnavailable("Redis does not keep the fleet's scripts") from None
        await self._load_scripts()
        try:
            return await self._execute(build)
        except NoScriptError:
            raise FleetUnavailable("Redis does not keep the fleet's scripts") from None

    async def _execute(self, build: Build) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        build(pipe)
        self.round_trips += 1
        self.commands += len(pipe.command_stack)
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                return await pipe.execute()
        except NoScriptError:
            raise
        except (RedisError, OSError, TimeoutError) as exc:
            raise FleetUnavailable(f"Redis did not answer: {exc or type(exc).__name__}") from None


def _json(value: str | None) -> dict[str, Any] | None:
    return json.loads(value) if value else None
