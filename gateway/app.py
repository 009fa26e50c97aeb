"""The aiohttp application factory: routes, middleware, and what lives as long as the app.

`create_app(settings)` is used by `gateway serve` and by the tests alike. Resources start and stop in
`cleanup_ctx`, in order: the Live endpoint (the embedded emulator when there are no credentials), the fleet
membership (fleet mode only: Redis is reached first, or the gateway does not start), then the call manager,
which ends whatever calls are left. The drain comes before, while the server still listens (`drain()`, called by
gateway/lifecycle.py): aiohttp's shutdown hooks run only after it has stopped listening. In fleet mode the
drain first tells every caller to `migrate`: their resumes reach other replicas, which take the calls over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.api import calls as calls_api
from gateway.api import events as events_api
from gateway.api import health as health_api
from gateway.api import tokens as tokens_api
from gateway.api.access import ACCESS, Access, access_control
from gateway.api.client_tokens import TokenSigner
from gateway.api.cors import Origins, cors_headers, origin_check
from gateway.api.errors import json_errors
from gateway.api.keys import CALLS, EMULATED, FLEET, METRICS, SETTINGS
from gateway.api.ratelimit import CallRateLimiter, limit_call_creation
from gateway.api.token_uses import LocalTokenUses
from gateway.calls.manager import CallManager
from gateway.config import LiveBackend, Settings
from gateway.live.client import LiveEndpoint, make_client
from gateway.media.ffmpeg_threads import use_one_ffmpeg_thread
from gateway.metrics import registry_for
from gateway.rtc import advertise_host_address, restrict_host_addresses, restrict_host_ports

if TYPE_CHECKING:  # loaded only when used (see create_app): a plain gateway does not carry them
    from gateway.emulator import Emulator, EmulatorConfig

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
ENDPOINT = web.AppKey("live_endpoint", LiveEndpoint)
EMULATOR: web.AppKey[Emulator] = web.AppKey("emulator")


def create_app(settings: Settings, *, emulator_config: EmulatorConfig | None = None) -> web.Application:
    """The gateway. `emulator_config` tunes the embedded emulator (used only when there are no credentials)."""
    use_one_ffmpeg_thread()  # process-wide: no FFmpeg thread pool per audio converter (see ffmpeg_threads.py)
    limiter = CallRateLimiter(settings.call_rate_per_minute, settings.call_burst)
    fleet_mode = bool(settings.redis_url)
    if fleet_mode:  # redis-py and the fleet code are 6 MiB of RSS that a single replica does without
        from gateway.api import fleet as fleet_api
        from gateway.fleet.member import FleetMember
        from gateway.fleet.token_uses import SharedTokenUses
    access = Access(settings, TokenSigner.from_settings(settings), LocalTokenUses())  # README "Access"
    check_access = access_control(access)
    origins = Origins(settings.allowed_origins)
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            json_errors,
            origin_check(origins),
            # Before access: a follow-up of another replica's call is checked by the replica that holds it.
            *([fleet_api.fleet_routing(check_access)] if fleet_mode else []),
            check_access,
            limit_call_creation(limiter, settings.client_ip_header),
        ],
    )
    app.on_response_prepare.append(cors_headers(origins))
    app[ACCESS] = access
    app[SETTINGS] = settings
    app[EMULATED] = settings.live_backend is LiveBackend.EMULATOR

    async def live_endpoint(app: web.Application) -> AsyncIterator[None]:
        if settings.live_backend is not LiveBackend.EMULATOR:
            app[ENDPOINT] = LiveEndpoint(settings.live_base_url, settings.live_ca_file)
            log.info("Live API: %s%s", settings.live_backend.value,
                     f" at {settings.live_base_url}" if settings.live_base_url else "")
            yield
            return
        from gateway.emulator import Emulator, EmulatorConfig  # its server code only when it is embedded

        config = emulator_config or EmulatorConfig(mode=settings.emulator_mode, seed=settings.emulator_seed)
        async with Emulator(config) as emulator:
            app[EMULATOR] = emulator
            app[ENDPOINT] = LiveEndpoint(emulator.url, emulator.ca_file)
            log.info("Live API: built-in emulator at %s (mode %s)", emulator.url, config.mode)
            yield

    async def fleet(app: web.Application) -> AsyncIterator[None]:
        if not fleet_mode:
            yield
            return
        assert settings.redis_url is not None
        member = await FleetMember.join(settings.redis_url, settings.fleet_url, settings.max_calls,
                                        grace_s=settings.caller_grace_s, keep_ended_s=settings.ended_call_s,
                                        history_size=settings.events_backlog)
        app[FLEET] = member
        access.uses = SharedTokenUses(member.registry)  # a client token counts and reaches its calls fleet-wide
        yield
        await member.stop()  # after the call manager: the calls' ends are written first

    async def call_manager(app: web.Application) -> AsyncIterator[None]:
        if settings.ice_addresses:
            restrict_host_addresses(settings.ice_addresses)
        if settings.ice_port_range or settings.ice_public_address:
            restrict_host_ports(settings.ice_port_range)
            advertise_host_address(settings.ice_public_address)
        manager = CallManager(settings, make_client(settings, app[ENDPOINT]))
        app[CALLS] = manager
        app[METRICS] = registry_for(manager, limiter, app[FLEET] if fleet_mode else None)
        if fleet_mode:
            app[FLEET].start(fleet_api.calls_view(manager))
        yield
        await manager.close()

    app.cleanup_ctx.extend([live_endpoint, fleet, call_manager])
    if fleet_mode:
        app.on_response_prepare.append(fleet_api.mark_replica)
        app.add_routes(fleet_api.routes)
    app.add_routes(calls_api.routes)
    app.add_routes(events_api.routes)
    app.add_routes(health_api.routes)
    app.add_routes(tokens_api.routes)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR, name="static")
    return app


async def drain(app: web.Application, timeout_s: float, cut_short: asyncio.Event | None = None) -> None:
    """Stop taking calls and let those in progress end (see CallManager.drain); in fleet mode, move them."""
    if FLEET in app:
        from gateway.api import fleet as fleet_api

        app[CALLS].draining = True  # first, so that the registry hears it before any caller moves
        await fleet_api.announce_drain(app[FLEET], app[CALLS], timeout_s)
    await app[CALLS].drain(timeout_s, cut_short)


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "index.html")
