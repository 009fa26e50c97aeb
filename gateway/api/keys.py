"""Typed application state shared by the handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway.calls.manager import CallManager
from gateway.config import Settings

if TYPE_CHECKING:  # fleet mode loads it (gateway/app.py)
    from gateway.fleet.member import FleetMember

SETTINGS = web.AppKey("settings", Settings)
CALLS = web.AppKey("calls", CallManager)
EMULATED = web.AppKey("emulated", bool)  # the Live side is an emulator: replies are the caller's own voice
METRICS = web.AppKey("metrics", CollectorRegistry)
FLEET: web.AppKey[FleetMember] = web.AppKey("fleet")  # fleet mode only (GATEWAY_REDIS_URL)
