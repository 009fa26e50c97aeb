"""Command line: `gateway serve | emulator | call | loadtest | sip-bridge` (design.md section 6a)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from gateway.config import ConfigError, LiveBackend, Settings

log = logging.getLogger("gateway")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description="WebRTC gateway for the Gemini Live API")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway (every flag also has a GATEWAY_* variable)")
    serve.add_argument("--host", help="address to listen on (GATEWAY_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (GATEWAY_PORT, default 8080)")
    serve.add_argument("--config", type=Path, dest="config_file", help="TOML file of profiles (GATEWAY_CONFIG)")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING... (GATEWAY_LOG_LEVEL, default INFO)")

    from gateway.bridges import cli as bridge_cli
    from gateway.client import cli as client_cli
    from gateway.emulator import cli as emulator_cli

    emulator_cli.add_arguments(commands.add_parser("emulator", help="run the Live API emulator alone"))
    client_cli.add_call_arguments(commands.add_parser("call", help="place a call from the command line"))
    client_cli.add_loadtest_arguments(commands.add_parser("loadtest", help="many calls at once, with a summary"))
    bridge_cli.add_arguments(commands.add_parser("sip-bridge", help="connect Janus's SIP plugin to a gateway"))

    args = parser.parse_args(argv)
    match args.command:
        case "serve":
            return serve_main(args)
        case "emulator":
            return emulator_cli.run(args)
        case "call":
            return client_cli.run_call(args)
        case "loadtest":
            return client_cli.run_loadtest(args)
        case "sip-bridge":
            return bridge_cli.run(args)
    return 2


def serve_main(args: argparse.Namespace) -> int:
    try:
        settings = Settings.load({"host": args.host, "port": args.port, "config_file": args.config_file,
                                  "log_level": args.log_level})
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.live_backend is LiveBackend.EMULATOR:
        log.warning("No Gemini credentials (GEMINI_API_KEY, GOOGLE_API_KEY or Vertex AI): using the built-in "
                    "Live API emulator. Replies are your own voice, played back.")
    log.info("settings: %s", settings.describe())

    from gateway.app import create_app
    from gateway.fleet import FleetUnavailable
    from gateway.lifecycle import serve
    from gateway.memory import collected_garbage

    app = create_app(settings)
    app.cleanup_ctx.append(collected_garbage)  # a long-running process: see memory.py
    try:
        asyncio.run(serve(app, settings.host, settings.port, settings.drain_s))
    except FleetUnavailable as exc:
        print(f"gateway: cannot join the fleet: {exc.reason} (GATEWAY_REDIS_URL)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
