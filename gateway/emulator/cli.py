"""`gateway emulator`: run the Live API emulator alone until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from gateway.media.ffmpeg_threads import use_one_ffmpeg_thread

from .config import EmulatorConfig, TimingMode
from .server import Emulator

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default 0: a free port)")
    parser.add_argument(
        "--mode", choices=[mode.value for mode in TimingMode], default=TimingMode.BURST.value,
        help="how reply audio is paced (default burst)",
    )
    parser.add_argument("--seed", type=int, default=None, help="make chunk sizes and timing deterministic")
    parser.add_argument(
        "--lifetime", type=float, default=None, metavar="SECONDS",
        help="send goAway, then close (1011), this long after each connection opens",
    )
    parser.add_argument(
        "--goaway-notice", type=float, default=10.0, metavar="SECONDS",
        help="how long before the close the goAway comes (at most half the lifetime; default 10)",
    )
    parser.add_argument("--key", default=None, help="require this API key (default: accept any)")
    parser.add_argument(
        "--tools", action="store_true", help="answer user turns with a toolCall when the setup declares functions"
    )


def config_from(args: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(
        host=args.host, port=args.port, mode=args.mode, seed=args.seed, lifetime_s=args.lifetime,
        goaway_notice_s=args.goaway_notice, api_key=args.key, tool_calls=args.tools,
    )


async def serve(config: EmulatorConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with Emulator(config) as emu:
            print(f"Live API emulator listening on {emu.url}", flush=True)
            print(f"CA certificate: {emu.ca_file}", flush=True)
            print(f"Gateway settings: GATEWAY_LIVE_BASE_URL={emu.url} GATEWAY_LIVE_CA_FILE={emu.ca_file}", flush=True)
            print(f"Mode {config.mode}; control API: {emu.url}/emulator/connections, /emulator/faults", flush=True)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from(args)
    except ValueError as exc:
        print(f"gateway emulator: {exc}", file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    use_one_ffmpeg_thread()
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        log.error("cannot start the emulator: %s", exc)
        return 1
    return 0
