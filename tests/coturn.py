"""Debian's coturn for the TURN tests (registered by tests/conftest.py), started by each test on 127.0.0.1.

`--allow-loopback-peers` lets it relay to 127.0.0.1, where the gateway and the callers are; no TLS, its
database, pid and log in the test's temp folder. Without /usr/bin/turnserver the tests are skipped, or fail
when CI=true (`make coturn` installs it as root).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint

from gateway.turn import turn_credentials

TURNSERVER = Path("/usr/bin/turnserver")
SECRET = "coturn-shared-secret-0123456789"
START_TIMEOUT_S = 10.0


@dataclass
class Coturn:
    port: int
    secret: str
    log: Path

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


async def allocate(port: int, username: str, password: str) -> None:
    """Make (and drop) one TURN allocation on 127.0.0.1:`port`; raises stun.TransactionFailed when refused."""
    transport, _ = await create_turn_endpoint(asyncio.DatagramProtocol, ("127.0.0.1", port), username, password)
    transport.close()


def error_code(refused: stun.TransactionFailed) -> int:
    return refused.response.attributes["ERROR-CODE"][0]


@pytest.fixture
async def coturn(tmp_path: Path) -> AsyncIterator[Coturn]:
    if not TURNSERVER.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{TURNSERVER} is missing and CI=true: install Debian's coturn (`make coturn` as root)")
        pytest.skip(f"{TURNSERVER} is missing: install Debian's coturn package to run the TURN tests")
    port = _free_port()
    log = tmp_path / "turnserver.log"
    args = [
        str(TURNSERVER), "-n", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
        "--listening-port", str(port), "--use-auth-secret", "--static-auth-secret", SECRET, "--realm", "gateway",
        "--allow-loopback-peers", "--no-tls", "--no-dtls", "--no-cli", "--no-rfc5780", "--fingerprint",
        "--userdb", str(tmp_path / "turndb"), "--pidfile", str(tmp_path / "turnserver.pid"),
        "--log-file", "stdout", "--simple-log", "--verbose",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        await _until_serving(port, process)
        yield Coturn(port, SECRET, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


async def _until_serving(port: int, process: subprocess.Popen[bytes]) -> None:
    """Wait until coturn takes an allocation with good credentials."""
    username, password = turn_credentials(SECRET, "probe", ttl_s=60)
    async with asyncio.timeout(START_TIMEOUT_S):
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"turnserver exited with {process.returncode}")
            try:
                await asyncio.wait_for(allocate(port, username, password), 1.0)
                return
            except (OSError, TimeoutError, stun.TransactionError):
                await asyncio.sleep(0.1)
