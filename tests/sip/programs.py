"""Real programs the SIP tests start themselves: Janus (SIP plugin, WebSocket transport) with its own config in
a temporary folder, everything on 127.0.0.1 and on ports the OS says are free."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

SHIMS = Path(__file__).resolve().parent / "shims"
JANUS_LIBS = Path("/usr/lib/x86_64-linux-gnu/janus")
REQUIRED = {"janus": "janus", "baresip": "baresip", "sipp": "sip-tester", "gcc": "gcc"}


def require_programs() -> None:
    """Skip (or fail, when CI=true) unless the Debian packages the SIP tests drive are installed."""
    missing = sorted(package for program, package in REQUIRED.items() if shutil.which(program) is None)
    if not missing:
        return
    message = f"missing Debian packages {' '.join(missing)} (`make sip-tools` as root installs them)"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " and CI=true")
    pytest.skip(message)


def free_port(kind: int = socket.SOCK_STREAM, pair: bool = False) -> int:
    """A port the OS just handed out on 127.0.0.1 (and, with `pair`, whose successor is free too)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if not pair or _free(port + 1):
            return port


def _free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def compile_shim(name: str, folder: Path) -> Path:
    """Build tests/sip/shims/<name>.c into an LD_PRELOAD library."""
    library = folder / f"{name}.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(library), str(SHIMS / f"{name}.c"), "-ldl",
                    "-lpthread"], check=True, capture_output=True)
    return library


async def wait_for_port(port: int, process: asyncio.subprocess.Process, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"the program exited ({process.returncode}) before listening on {port}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                await writer.wait_closed()
                return
            except OSError:
                await asyncio.sleep(0.05)


async def stop(process: asyncio.subprocess.Process, timeout: float = 5.0) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            async with asyncio.timeout(timeout):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


class Janus:
    """Debian's Janus with only the SIP plugin and the WebSocket transport, its config in `folder`."""

    def __init__(self, folder: Path, loopback_shim: Path) -> None:
        self.folder = folder
        self.shim = loopback_shim
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None
        self.log = folder / "janus.log"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start Janus; a restart (after stop) keeps its WebSocket port."""
        self.port = self.port or free_port()
        self._write_config()
        with open(self.log, "ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                "janus", "-C", str(self.folder / "janus.jcfg"), "-F", str(self.folder),
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "LD_PRELOAD": str(self.shim)},
            )
        await wait_for_port(self.port, self.process)

    async def stop(self) -> None:
        if self.process is not None:
            await stop(self.process)

    def _write_config(self) -> None:
        for kind, library in (("plugins", "libjanus_sip.so"), ("transports", "libjanus_websockets.so")):
            (self.folder / kind).mkdir(exist_ok=True)
            link = self.folder / kind / library
            if not link.exists():
                link.symlink_to(JANUS_LIBS / kind / library)
        (self.folder / "janus.jcfg").write_text(f"""
general: {{
    configs_folder = "{self.folder}"
    plugins_folder = "{self.folder}/plugins"
    transports_folder = "{self.folder}/transports"
    events_folder = "{self.folder}/none"
    loggers_folder = "{self.folder}/none"
    debug_level = 4
    debug_timestamps = true
    debug_colors = false
    interface = "127.0.0.1"
}}
nat: {{
    full_trickle = false
}}
""")
        (self.folder / "janus.transport.websockets.jcfg").write_text(f"""
general: {{
    json = "compact"
    ws = true
    ws_port = {self.port}
    ws_ip = "127.0.0.1"
    wss = false
}}
admin: {{
    admin_ws = false
}}
""")
        # SIP and RTP on 127.0.0.1; no SIP keep-alives (OPTIONS) to phones that come and go.
        (self.folder / "janus.plugin.sip.jcfg").write_text("""
general: {
    local_ip = "127.0.0.1"
    keepalive_interval = 0
    behind_nat = false
    register_ttl = 300
    rtp_port_range = "20000-60000"
}
""")
