"""The emulator: a TLS WebSocket server on 127.0.0.1 that speaks the Gemini Live API wire protocol."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import shutil
import ssl
import tempfile
from pathlib import Path
from typing import Callable

from aiohttp import web

from . import control, tls
from .config import EmulatorConfig
from .connection import EmulatedConnection
from .state import EmulatorState, SetupRefusal
from .wire import UNAVAILABLE, Close

log = logging.getLogger(__name__)

# The SDK's base URL ends in "/", so its real request path starts with "//" (protocol reference 1.1).
DEVELOPER_PATH = re.compile(
    r"^/+ws/google\.ai\.generativelanguage\.(v1|v1alpha|v1beta)\.GenerativeService\.BidiGenerateContent"
    r"(Constrained)?$"
)
VERTEX_PATH = re.compile(r"^/+ws/google\.cloud\.aiplatform\.(v1|v1beta1)\.LlmBidiService/BidiGenerateContent$")
CLOSE_HANDSHAKE_S = 2.0  # how long a close waits for the client's close frame
MAX_CLIENT_MESSAGE_BYTES = 8 * 1024 * 1024
MAX_CONTROL_BODY_BYTES = 64 * 1024
SHUTDOWN_CLOSE = Close(1001, "The emulator is shutting down.")


def api_version(path: str) -> str | None:
    """The API version named by a Live API path, or None for any other path."""
    match = DEVELOPER_PATH.match(path) or VERTEX_PATH.match(path)
    return match.group(1) if match else None


def key_accepted(request: web.Request, expected: str | None) -> bool:
    """With a configured key, it must come in x-goog-api-key, Authorization (Bearer|Token) or ?key=."""
    if expected is None:
        return True
    presented = [request.headers.get("x-goog-api-key", ""), request.query.get("key", "")]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "token"):
        presented.append(token.strip())
    return any(key and hmac.compare_digest(key.encode(), expected.encode()) for key in presented)


def create_app(state: EmulatorState) -> web.Application:
    app = web.Application(client_max_size=MAX_CONTROL_BODY_BYTES)
    control.add_routes(app, state)

    async def live(request: web.Request) -> web.StreamResponse:
        version = api_version(request.path)
        if version is None:
            return control.error_response("not_found", f"no Live API endpoint at {request.path}", 404)
        ws = web.WebSocketResponse(timeout=CLOSE_HANDSHAKE_S, max_msg_size=MAX_CLIENT_MESSAGE_BYTES)
        if not ws.can_prepare(request).ok:
            return control.error_response("upgrade_required", "the Live API is a WebSocket endpoint", 400)
        await ws.prepare(request)
        conn = EmulatedConnection(
            state.next_connection_id(), request, ws, version, key_accepted(request, state.config.api_key), state
        )
        state.add_connection(conn)
        await conn.run()
        return ws

    app.router.add_get("/{path:.*}", live)  # a catch-all: the path is matched above, leading slashes and all
    return app


class Emulator:
    """The Live API emulator. `async with Emulator(config) as emu:` or `start()` / `stop()`."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self._state = EmulatorState(self.config)
        self._runner: web.AppRunner | None = None
        self._files: tls.CertificateFiles | None = None
        self._own_dir: Path | None = None
        self.port: int | None = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        if self.config.state_dir is None:
            self._own_dir = directory = Path(tempfile.mkdtemp(prefix="gateway-emulator-"))
        else:
            directory = Path(self.config.state_dir)
            directory.mkdir(parents=True, exist_ok=True)
        self._files = tls.write_certificate(directory, self.config.host)
        runner = web.AppRunner(create_app(self._state), handle_signals=False, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.config.host, self.config.port, ssl_context=tls.server_context(self._files))
            await site.start()
        except BaseException:
            await runner.cleanup()
            self._remove_files()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("Live API emulator listening on %s (mode %s)", self.url, self.config.mode)

    async def stop(self) -> None:
        """Close every connection, stop the server and remove the certificate files."""
        if self._runner is None:
            return
        async with asyncio.TaskGroup() as tg:
            for conn in self.active():
                tg.create_task(conn.close(SHUTDOWN_CLOSE.code, SHUTDOWN_CLOSE.reason))
        await self._runner.cleanup()
        self._runner, self.port = None, None
        self._remove_files()
        log.info("Live API emulator stopped")

    def _remove_files(self) -> None:
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None
        elif self._files is not None:
            self._files.cert_file.unlink(missing_ok=True)
            self._files.key_file.unlink(missing_ok=True)
        self._files = None

    @property
    def url(self) -> str:
        """The base URL to give google-genai as `http_options.base_url`."""
        if self.port is None:
            raise RuntimeError("the emulator is not running")
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.config.host, self.config.host)
        return f"https://[{host}]:{self.port}" if ":" in host else f"https://{host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The PEM certificate clients must trust (it is its own CA)."""
        if self._files is None:
            raise RuntimeError("the emulator is not running")
        return self._files.cert_file

    def client_ssl_context(self) -> ssl.SSLContext:
        return tls.client_context(self.ca_file)

    @property
    def connections(self) -> list[EmulatedConnection]:
        """Every connection accepted so far, oldest first."""
        return self._state.connections

    def active(self, call_id: str | None = None) -> list[EmulatedConnection]:
        """Open connections, optionally only those tagged with this x-gateway-call-id."""
        return [c for c in self._state.connections if c.is_open and (call_id is None or c.call_id == call_id)]

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        """Poll `predicate` until it is true; TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)

    def refuse_next_setups(
        self, count: int = 1, code: int = UNAVAILABLE.code, reason: str = UNAVAILABLE.reason
    ) -> None:
        """The next `count` setups are answered by a close with `code` and `reason` instead of setupComplete."""
        self._state.refusals.extend([SetupRefusal(Close(code, reason))] * count)

    def expire_handles(self) -> None:
        """Every resumption handle issued so far becomes unknown (they expire after 2 h on the real service)."""
        self._state.handles.expire_all()

    def set_tool_calls(self, enabled: bool) -> None:
        """Answer user turns with a toolCall (when the setup declares functions) from now on."""
        self._state.tool_calls = enabled
