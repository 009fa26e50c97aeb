"""The benchmark's server processes (emulator, gateway, echo baseline), and their CPU time and memory from /proc.

Each server runs in its own process and session, so its CPU and memory are its own, and a Ctrl-C in the
terminal reaches only the benchmark, which then stops every process it started (by pid).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(__file__).resolve().parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
SECRETS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI")  # the emulator needs none
ALL_CPUS = frozenset(os.sched_getaffinity(0))
OWN = "bench process (callers)"
OTHERS = "other processes"  # not ours: anything else loading the machine while we measure


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads included (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 is fields[0]
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def runqueue_wait_seconds(pid: int) -> float:
    """How long the process's main thread (the event loop) has waited for a CPU while runnable (schedstat)."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[1]) / 1e9


def every_process_cpu() -> dict[int, float]:
    """CPU seconds of every process on the machine, by pid (those that vanish while read are skipped)."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                found[int(entry.name)] = cpu_seconds(int(entry.name))
    return found


def set_affinity(pid: int, cpus: Iterable[int]) -> None:
    """Move every thread of a process to `cpus`; threads started later inherit their creator's affinity."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), set(cpus))


@contextlib.contextmanager
def own_cpu(server: Server, others: list[Server]) -> Iterator[None]:
    """`server` alone on one CPU; the callers (this process) and `others` on the rest, until the block ends.

    On a small machine the benchmark's own callers would otherwise take CPU from the gateway, and their load
    would show up as the gateway's latency and pacing jitter; in a deployment the callers are elsewhere.
    """
    if len(ALL_CPUS) < 2:
        yield
        return
    mine = {max(ALL_CPUS)}
    rest = ALL_CPUS - mine
    set_affinity(server.pid, mine)
    for pid in (os.getpid(), *(other.pid for other in others)):
        set_affinity(pid, rest)
    try:
        yield
    finally:
        for pid in (os.getpid(), server.pid, *(other.pid for other in others)):
            with contextlib.suppress(OSError):
                set_affinity(pid, ALL_CPUS)


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used so far by each server, by this process (the callers) and by every other process."""

    at: float
    servers: dict[str, float]
    waits: dict[str, float]  # each server's event-loop thread: time spent waiting for a CPU
    own: float
    everyone: dict[int, float]
    ours: frozenset[int]

    @classmethod
    def take(cls, servers: list[Server]) -> CpuSample:
        return cls(time.monotonic(), {s.name: s.cpu_seconds() for s in servers},
                   {s.name: runqueue_wait_seconds(s.pid) for s in servers}, cpu_seconds(os.getpid()),
                   every_process_cpu(), frozenset([os.getpid(), *(s.pid for s in servers)]))

    def rates_since(self, before: CpuSample) -> dict[str, float]:
        """ms of CPU per second of the interval, per process; OTHERS is every process not ours (a lower bound:
        one that ended meanwhile is not counted)."""
        seconds = self.at - before.at
        used = {name: self.servers[name] - before.servers[name] for name in self.servers}
        used[OWN] = self.own - before.own
        used[OTHERS] = sum(cpu - before.everyone.get(pid, 0.0) for pid, cpu in self.everyone.items()
                           if pid not in self.ours)
        return {name: round(1000 * value / seconds, 1) for name, value in used.items()}

    def waits_since(self, before: CpuSample) -> dict[str, float]:
        """ms per second each server's event loop was ready to run but had no CPU."""
        seconds = self.at - before.at
        return {name: round(1000 * (self.waits[name] - before.waits[name]) / seconds, 1) for name in self.waits}


def rss_mib(pid: int) -> float:
    """Resident set size (VmRSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def run_interruptible(name: str, main: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any] | None:
    """`asyncio.run(main)`; None after a Ctrl-C or SIGTERM, by which time every process it started is stopped."""

    async def cancelled_by_sigterm_too() -> dict[str, Any]:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)  # cleans up like Ctrl-C
        return await main

    try:
        return asyncio.run(cancelled_by_sigterm_too())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"{name}: interrupted; every process it started has been stopped", file=sys.stderr)
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    process: asyncio.subprocess.Process
    url: str
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_mib(self) -> float:
        return rss_mib(self.pid)


class Processes:
    """Starts the servers and stops every one of them on exit, whatever ends the benchmark."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._running: list[Server] = []

    async def __aenter__(self) -> Processes:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            for server in reversed(list(self._running)):
                await self.stop(server)
        finally:
            self.kill_remaining()

    def kill_remaining(self) -> None:
        """Last resort (a second Ctrl-C during the orderly stop): SIGKILL what is left, by pid."""
        for server in self._running:
            if server.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(server.pid, signal.SIGKILL)

    async def emulator(self, mode: str, seed: int, lifetime_s: float | None = None) -> Server:
        """`gateway emulator` (goAway after `lifetime_s`, if given); its first lines name its URL and CA file."""
        log_path = self.log_dir / f"emulator-{mode}.log"
        command = [sys.executable, "-m", "gateway", "emulator", "--port", "0", "--mode", mode, "--seed", str(seed)]
        if lifetime_s is not None:
            command += ["--lifetime", str(lifetime_s)]
        process = await self._spawn(command, log_path, stdout=asyncio.subprocess.PIPE)
        server = Server(f"emulator ({mode})", process, "", log_path)
        self._running.append(server)
        assert process.stdout is not None
        async with asyncio.timeout(START_TIMEOUT_S):
            while not (server.url and "ca_file" in server.extra):
                line = (await process.stdout.readline()).decode()
                if not line:
                    raise RuntimeError(f"the emulator exited; see {log_path}")
                if line.startswith("Live API emulator listening on "):
                    server.url = line.split()[-1]
                elif line.startswith("CA certificate: "):
                    server.extra["ca_file"] = line.split(": ", 1)[1].strip()
        return server

    async def gateway(self, emulator: Server) -> Server:
        """`gateway serve` pointed at the emulator."""
        port = free_port()
        env = {
            "GATEWAY_PORT": str(port),
            "GATEWAY_LIVE_BASE_URL": emulator.url,
            "GATEWAY_LIVE_CA_FILE": emulator.extra["ca_file"],
            "GATEWAY_ICE_ADDRESSES": "127.0.0.1",
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_DRAIN_SECONDS": "1",
            "GATEWAY_CALL_RATE_PER_MINUTE": "0",  # every call comes from 127.0.0.1
        }
        return await self._http_server("gateway", [sys.executable, "-m", "gateway", "serve"], port, env)

    async def echo(self) -> Server:
        """The bare aiortc echo server (echo_server.py), the CPU baseline."""
        port = free_port()
        return await self._http_server("echo", [sys.executable, str(BENCH_DIR / "echo_server.py"), "--port", str(port)],
                                       port, {})

    async def program(self, name: str, command: list[str], *, stdout: int | None = None) -> Server:
        """Any other process a phase needs (its log in the log folder), stopped with the rest."""
        log_path = self.log_dir / f"{name}.log"
        server = Server(name, await self._spawn(command, log_path, stdout=stdout), "", log_path)
        self._running.append(server)
        return server

    async def stop(self, server: Server) -> None:
        """SIGTERM, then SIGKILL if it lingers; only this process, by its pid."""
        if server in self._running:
            self._running.remove(server)
        process = server.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    async def _http_server(self, name: str, command: list[str], port: int, env: dict[str, str]) -> Server:
        log_path = self.log_dir / f"{name.split()[0]}-{port}.log"
        process = await self._spawn(command, log_path, env=env)
        server = Server(name, process, f"http://127.0.0.1:{port}", log_path)
        self._running.append(server)
        await _wait_healthy(server)
        return server

    async def _spawn(self, command: list[str], log_path: Path, *, env: dict[str, str] | None = None,
                     stdout: int | None = None) -> asyncio.subprocess.Process:
        environment = {k: v for k, v in os.environ.items() if k not in SECRETS} | (env or {})
        with log_path.open("wb") as log:
            return await asyncio.create_subprocess_exec(
                *command, cwd=REPO, env=environment, stdout=stdout or log, stderr=log, start_new_session=True,
            )


async def _wait_healthy(server: Server) -> None:
    """Poll /healthz until the server answers (there is no event to await across processes)."""
    async with aiohttp.ClientSession() as http, asyncio.timeout(START_TIMEOUT_S):
        while True:
            if server.process.returncode is not None:
                raise RuntimeError(f"{server.name} exited with {server.process.returncode}; see {server.log_path}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{server.url}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
