"""`gateway sip-bridge`: connect Janus's SIP plugin to a gateway, until SIGINT or SIGTERM (design.md 6a)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.bridges.api import create_api
from gateway.bridges.bridge import SipBridge
from gateway.bridges.settings import BridgeConfigError, BridgeSettings

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--janus", dest="janus_url", help="Janus WebSocket API (SIP_BRIDGE_JANUS_URL, "
                                                         "default ws://127.0.0.1:8188)")
    parser.add_argument("--gateway", dest="gateway_url", help="the gateway or a load balancer in front of several "
                                                             "(SIP_BRIDGE_GATEWAY_URL, default http://127.0.0.1:8080)")
    parser.add_argument("--accounts", dest="accounts_file", type=Path,
                        help="TOML file of SIP accounts to register (SIP_BRIDGE_ACCOUNTS); none: direct INVITEs")
    parser.add_argument("--host", help="the bridge's own HTTP API (SIP_BRIDGE_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="its port (SIP_BRIDGE_PORT, default 8090; 0: a free one)")
    parser.add_argument("--log-level", help="DEBUG, INFO... (SIP_BRIDGE_LOG_LEVEL, default INFO)")


def run(args: argparse.Namespace) -> int:
    try:
        settings = BridgeSettings.load({"janus_url": args.janus_url, "gateway_url": args.gateway_url,
                                        "accounts_file": args.accounts_file, "host": args.host, "port": args.port,
                                        "log_level": args.log_level})
    except BridgeConfigError as exc:
        print(f"gateway sip-bridge: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(settings))
    return 0


async def serve(settings: BridgeSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with aiohttp.ClientSession() as http:
        bridge = SipBridge(settings, http)
        runner = web.AppRunner(create_api(bridge, settings), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        print(f"sip-bridge: API on http://{host}:{port}, Janus {settings.janus_url}, gateway {settings.gateway_url}",
              flush=True)
        bridging = asyncio.create_task(bridge.run(), name="sip-bridge")
        try:
            await stop.wait()
        finally:
            log.info("stopping: hanging up %d call(s)", len(bridge.calls))
            bridging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bridging
            await runner.cleanup()
