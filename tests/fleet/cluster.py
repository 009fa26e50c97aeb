"""Real programs for the fleet tests, on loopback ports the OS picked: Debian's redis-server, a standalone
`gateway emulator` (so a Live handle is resumable from any replica), `gateway serve` replicas and Debian's
haproxy in front of them, with the deployed config. Every process runs in its own session and is stopped by
its pid."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.gateway_process import free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOYED_HAPROXY = REPO / "deploy" / "haproxy" / "haproxy.cfg"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
SECRETS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GATEWAY_REDIS_URL")


def require(program: str) -> str:
    """The path of a Debian program the tests need; skipped without it (a failure when CI=true)."""
    path = shutil.which(program) or (f"/usr/sbin/{program}" if os.path.exists(f"/usr/sbin/{program}") else None)
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{program} is missing and CI=true: install it (`make fleet-tools` as root)")
    pytest.skip(f"{program} is missing: install Debian's {program} package to run the fleet tests")


class Program:
    """One process started by the tests, its output in a log file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None,
                 *, pipe_stdout: bool = False) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        environment = {k: v for k, v in os.environ.items() if k not in SECRETS} | (env or {})
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(argv, cwd=REPO, env=environment, start_new_session=True,
                                            stdout=subprocess.PIPE if pipe_stdout else log, stderr=log)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)

    async def exited(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """Wait (without blocking the event loop) for the process to exit; its exit code."""
        async with asyncio.timeout(timeout):
            while self.process.poll() is None:
                await asyncio.sleep(0.05)
        return self.process.returncode

    def stop(self) -> None:
        """SIGTERM, SIGKILL if it lingers (teardown only: this blocks)."""
        if self.running:
            self.signal(signal.SIGCONT)  # a test may have paused it
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=0.5) as response:
            return response.status == 200
    except OSError:
        return False


def accepts(port: int) -> bool:
    with socket.socket() as s, contextlib.suppress(OSError):
        s.settimeout(0.5)
        s.connect(("127.0.0.1", port))
        return True
    return False


@dataclass
class Replica:
    name: str
    port: int
    program: Program | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    """Redis, the emulator, `replicas` gateways and HAProxy; `env` adds settings to every gateway."""

    workdir: Path
    replicas: int = 3
    env: dict[str, str] = field(default_factory=dict)
    redis: Program | None = None
    redis_port: int = 0
    emulator: Program | None = None
    live_env: dict[str, str] = field(default_factory=dict)
    gateways: list[Replica] = field(default_factory=list)
    haproxy: Program | None = None
    lb_port: int = 0

    @property
    def lb_url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start(self) -> Cluster:
        self.start_redis()
        self.start_emulator()
        self.gateways = [Replica(f"gateway-{i + 1}", free_port()) for i in range(self.replicas)]
        for replica in self.gateways:
            self.launch(replica)
        _wait(lambda: all(healthy(r.url) for r in self.gateways), "the gateways", self._logs)
        self._start_haproxy()
        return self

    def stop(self) -> None:
        for program in [self.haproxy, *(r.program for r in self.gateways), self.emulator, self.redis]:
            if program is not None:
                program.stop()

    def start_redis(self) -> None:
        self.redis_port = self.redis_port or free_port()
        argv = [require("redis-server"), "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--protected-mode", "no"]
        self.redis = Program("redis", argv, self.workdir)
        _wait(lambda: accepts(self.redis_port), "redis-server", self._logs)

    def launch(self, replica: Replica) -> None:
        """Start (or start again) `gateway serve` for `replica`; returns at once."""
        env = {"GATEWAY_PORT": str(replica.port), "GATEWAY_REDIS_URL": self.redis_url,
               "GATEWAY_ICE_ADDRESSES": "127.0.0.1", "GATEWAY_CALL_RATE_PER_MINUTE": "0",
               "GATEWAY_LOG_LEVEL": "INFO", **self.live_env, **self.env}
        replica.program = Program(replica.name, [sys.executable, "-m", "gateway", "serve"], self.workdir, env)

    async def restart(self, replica: Replica) -> None:
        self.launch(replica)
        async with asyncio.timeout(START_TIMEOUT_S):
            while not await asyncio.to_thread(healthy, replica.url):
                assert replica.program and replica.program.running, replica.program and replica.program.log()
                await asyncio.sleep(0.1)

    def start_emulator(self) -> None:
        argv = [sys.executable, "-m", "gateway", "emulator", "--port", "0", "--mode", "burst", "--seed", "7"]
        self.emulator = Program("emulator", argv, self.workdir, pipe_stdout=True)
        assert self.emulator.process.stdout is not None
        while not {"GATEWAY_LIVE_BASE_URL", "GATEWAY_LIVE_CA_FILE"} <= self.live_env.keys():
            line = self.emulator.process.stdout.readline().decode()
            assert line, f"the emulator exited: {self.emulator.log()}"
            if line.startswith("Live API emulator listening on "):
                self.live_env["GATEWAY_LIVE_BASE_URL"] = line.split()[-1]
            elif line.startswith("CA certificate: "):
                self.live_env["GATEWAY_LIVE_CA_FILE"] = line.split(": ", 1)[1].strip()

    def _start_haproxy(self) -> None:
        self.lb_port = free_port()
        config = self.workdir / "haproxy.cfg"
        config.write_text(haproxy_config(f"127.0.0.1:{self.lb_port}", [(r.name, r.port) for r in self.gateways]))
        self.haproxy = Program("haproxy", [require("haproxy"), "-f", str(config), "-db"], self.workdir)
        _wait(lambda: healthy(self.lb_url), "haproxy", self._logs)

    def _logs(self) -> str:
        programs = [self.redis, self.emulator, *(r.program for r in self.gateways), self.haproxy]
        return "\n".join(f"--- {p.name}\n{p.log()[-3000:]}" for p in programs if p is not None)


def haproxy_config(bind: str, servers: list[tuple[str, int]]) -> str:
    """The deployed HAProxy config (deploy/haproxy/haproxy.cfg, one source of truth) bound to `bind`, with these
    replicas in place of its `server` lines."""
    lines = DEPLOYED_HAPROXY.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("server "))
    kept = [f"    bind {bind}" if line.strip().startswith("bind ") else line
            for line in lines if not line.strip().startswith("server ")]
    return "\n".join(kept[:at] + [f"    server {name} 127.0.0.1:{port}" for name, port in servers] + kept[at:]) + "\n"


def _wait(condition, what: str, logs) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + START_TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up in {START_TIMEOUT_S:.0f} s\n{logs()}")
        time.sleep(0.1)
