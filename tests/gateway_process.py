"""`gateway serve` as a process of its own, for tests that signal it or read its exit (CLI, drain)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

CREDENTIALS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GATEWAY_LIVE_BASE_URL")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nothing on 127.0.0.1 uses right now (TCP unless `kind` says otherwise)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_healthy(url: str, timeout: float = 20.0, process: asyncio.subprocess.Process | None = None) -> None:
    """Until `url`/healthz answers 200; gives up early if `process` has exited."""
    async with asyncio.timeout(timeout), aiohttp.ClientSession() as http:
        while process is None or process.returncode is None:
            try:
                async with http.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the gateway exited with {process.returncode} before it was healthy")


def gateway_env(**settings: str) -> dict[str, str]:
    """This environment without Gemini credentials (so the embedded emulator runs), media on loopback."""
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
    return {**env, "GATEWAY_ICE_ADDRESSES": "127.0.0.1", **settings}


@dataclass
class GatewayProcess:
    url: str
    process: asyncio.subprocess.Process
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def exit_code(self, timeout: float) -> int:
        return await asyncio.wait_for(self.process.wait(), timeout)


@asynccontextmanager
async def gateway_process(log_dir: Path, **settings: str) -> AsyncIterator[GatewayProcess]:
    """`gateway serve` on a free port with these GATEWAY_* settings; killed at the end if still running."""
    port = free_port()
    log_path = log_dir / f"gateway-{port}.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "serve", env=gateway_env(GATEWAY_PORT=str(port), **settings),
            stdout=log_file, stderr=log_file,
        )
    server = GatewayProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        await wait_healthy(server.url, process=process)
        yield server
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
