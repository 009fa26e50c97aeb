"""`gateway serve`'s lifetime: listen, drain on the first SIGTERM or SIGINT, then stop and exit.

aiohttp's `run_app` stops listening before its shutdown hooks run, so a drain there can neither answer
`/readyz` with 503 nor serve the calls still in progress. Here the listener stays open through the drain:
the first signal starts it (`/readyz` and new calls get 503, every other request is served), a second one
cuts the wait short; the site closes and the app cleans up only once every call has ended.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from gateway.api.access_log import AccessLogger
from gateway.app import drain

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# After the drain: how long requests still in flight (say, an events stream writing its last event) may take.
SHUTDOWN_TIMEOUT_S = 5.0


async def serve(app: web.Application, host: str, port: int, drain_s: float) -> None:
    """Serve `app` on host:port until a signal, draining its calls for up to `drain_s` before stopping."""
    stop, hurry = asyncio.Event(), asyncio.Event()

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            log.info("%s again: ending the calls now", signum.name)
            hurry.set()
        else:
            log.info("%s: draining (up to %.0f s), /readyz answers 503", signum.name, drain_s)
            stop.set()

    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log_class=AccessLogger)
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("listening on %s", ", ".join(f"http://{a[0]}:{a[1]}" for a in runner.addresses))
        await stop.wait()
        await drain(app, drain_s, cut_short=hurry)
        log.info("drained; stopping")
    finally:
        await runner.cleanup()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
