"""The aiohttp application factory: routes, middleware, and what lives as long as the app.

`create_app(settings)` is used by `gateway serve` and by the tests alike. Resources start and stop in
`cleanup_ctx`, in order: the Live endpoint (the embedded emulator when there are no credentials), then the
call manager, which ends whatever calls are left. The drain comes before, while the server still listens
(gateway/lifecycle.py): aiohttp's shutdown hooks run only after it has stopped listening.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from gateway.api import calls as calls_api
from gateway.api import health as health_api
from gateway.api import tokens as tokens_api
from gateway.api.access import ACCESS, Access, access_control
from gateway.api.client_tokens import TokenSigner
from gateway.api.cors import Origins, cors_headers, origin_check
from gateway.api.errors import json_errors
from gateway.api.keys import CALLS, EMULATED, METRICS, SETTINGS
from gateway.api.ratelimit import CallRateLimiter, limit_call_creation
from gateway.api.token_uses import LocalTokenUses
from gateway.calls.manager import CallManager
from gateway.config import LiveBackend, Settings
from gateway.emulator import Emulator, EmulatorConfig
from gateway.live.client import LiveEndpoint, make_client
from gateway.media.ffmpeg_threads import use_one_ffmpeg_thread
from gateway.metrics import registry_for
from gateway.rtc import advertise_host_address, restrict_host_addresses, restrict_host_ports

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
ENDPOINT = web.AppKey("live_endpoint", LiveEndpoint)
EMULATOR = web.AppKey("emulator", Emulator)


def create_app(settings: Settings, *, emulator_config: EmulatorConfig | None = None) -> web.Application:
    """The gateway. `emulator_config` tunes the embedded emulator (used only when there are no credentials)."""
    use_one_ffmpeg_thread()  # process-wide: no FFmpeg thread pool per audio converter (see ffmpeg_threads.py)
    limiter = CallRateLimiter(settings.call_rate_per_minute, settings.call_burst)
    access = Access(settings, TokenSigner.from_settings(settings), LocalTokenUses())  # README "Access"
    origins = Origins(settings.allowed_origins)
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            json_errors,
            origin_check(origins),
            access_control(access),
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
        config = emulator_config or EmulatorConfig(mode=settings.emulator_mode, seed=settings.emulator_seed)
        async with Emulator(config) as emulator:
            app[EMULATOR] = emulator
            app[ENDPOINT] = LiveEndpoint(emulator.url, emulator.ca_file)
            log.info("Live API: built-in emulator at %s (mode %s)", emulator.url, config.mode)
            yield

    async def call_manager(app: web.Application) -> AsyncIterator[None]:
        if settings.ice_addresses:
            restrict_host_addresses(settings.ice_addresses)
        if settings.ice_port_range or settings.ice_public_address:
            restrict_host_ports(settings.ice_port_range)
            advertise_host_address(settings.ice_public_address)
        manager = CallManager(settings, make_client(settings, app[ENDPOINT]))
        app[CALLS] = manager
        app[METRICS] = registry_for(manager, limiter)
        yield
        await manager.close()

    app.cleanup_ctx.extend([live_endpoint, call_manager])
    app.add_routes(calls_api.routes)
    app.add_routes(health_api.routes)
    app.add_routes(tokens_api.routes)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR, name="static")
    return app


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "index.html")
