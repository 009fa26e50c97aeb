"""The phone phase of `make bench`: baresip phones -> Janus's SIP plugin -> `gateway sip-bridge` -> a gateway.

    .venv/bin/python tests/bench/run.py --phone      (this phase alone; `make bench` runs it last)

Every part is its own process: the emulator (burst), `gateway serve`, Debian's Janus 1.1.2 (with the SIP
tests' loopback shim), `gateway sip-bridge` and one baresip per phone (with the paced ALSA shim). Rounds of
1 and of 5 concurrent calls; each phone says one utterance and hears the parrot's reply. Figures:
- onset at the phone: its utterance ends -> the reply starts, from its own recordings. baresip writes what it
  sends from the moment the call's audio starts and what it hears from the first packet on; both end at the
  hang-up, so the heard recording starts (sent length - heard length) later, which is added back.
- CPU per phone call-second of the gateway, the bridge (and, for information, Janus and the phones), from
  /proc over the rounds' calls.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: make `tests` importable

from tests.audio import best_match  # noqa: E402
from tests.bench.phases import progress  # noqa: E402
from tests.bench.procs import Processes, Server, cpu_seconds  # noqa: E402
from tests.bench.report import Row, pooled  # noqa: E402
from tests.sip.baresip import Phone  # noqa: E402
from tests.sip.conftest import LEAD_S, SPEECH_S, microphone  # noqa: E402
from tests.sip.programs import Janus, compile_shim  # noqa: E402

SEED = 1
CALL_S = 10.0  # each phone's WAV: the utterance 1 s in, then silence; baresip hangs up when it ends
ROUNDS = ((1, 3), (5, 2))  # (concurrent calls, rounds)


async def alone(log_dir: Path) -> dict[str, Any]:
    """The phone phase on its own (run.py --phone)."""
    async with Processes(log_dir) as procs:
        return {"phone": await phone_phase(procs, log_dir / "phone")}


async def phone_phase(procs: Processes, folder: Path) -> dict[str, Any]:
    """Start the phone path's processes next to `procs`' and measure every round; returns the figures."""
    shutil.rmtree(folder, ignore_errors=True)  # recordings of an earlier run must not be read as this one's
    folder.mkdir(parents=True)
    shims = {name: compile_shim(name, folder) for name in ("loopback_visible", "alsa_paced")}
    emulator = await procs.emulator("burst", SEED)
    gateway = await procs.gateway(emulator)
    janus = Janus(folder / "janus", shims["loopback_visible"])
    janus.folder.mkdir()
    await janus.start()
    try:
        bridge, uri = await _bridge(procs, janus.url, gateway.url)
        figures = {}
        for calls, rounds in ROUNDS:
            progress(f"phone: {rounds} round(s) of {calls} call(s)")
            figures[str(calls)] = await _rounds(calls, rounds, uri, folder, shims["alsa_paced"],
                                                {"gateway": gateway, "bridge": bridge}, janus)
        await procs.stop(bridge)
    finally:
        await janus.stop()
    await procs.stop(gateway)
    await procs.stop(emulator)
    return figures


async def _bridge(procs: Processes, janus_url: str, gateway_url: str) -> tuple[Server, str]:
    server = await procs.program("sip-bridge", [sys.executable, "-m", "gateway", "sip-bridge", "--janus", janus_url,
                                                "--gateway", gateway_url, "--port", "0", "--log-level", "WARNING"],
                                 stdout=asyncio.subprocess.PIPE)
    assert server.process.stdout is not None
    async with asyncio.timeout(30):
        while True:
            line = (await server.process.stdout.readline()).decode()
            if not line:
                raise RuntimeError(f"the bridge exited; see {server.log_path}")
            if line.startswith("sip: ready direct at "):
                return server, line.split()[-1]


async def _rounds(calls: int, rounds: int, uri: str, folder: Path, shim: Path, servers: dict[str, Server],
                  janus: Janus) -> dict[str, Any]:
    onsets, cpu = [], {name: 0.0 for name in (*servers, "janus", "phones")}
    call_seconds = 0.0
    for round_ in range(rounds):
        phones = [Phone(folder / f"phones-{calls}-{round_}-{i}", shim, f"bench{i}") for i in range(calls)]
        try:
            await asyncio.gather(*(phone.start(microphone(CALL_S, SEED + i)) for i, phone in enumerate(phones)))
            before = _cpu(servers, janus, phones)
            began = time.monotonic()
            await asyncio.gather(*(phone.dial(uri) for phone in phones))
            await asyncio.gather(*(phone.wait_for("CALL_ESTABLISHED", timeout=30) for phone in phones))
            await asyncio.gather(*(phone.wait_for("CALL_CLOSED", timeout=30) for phone in phones))
            call_seconds += calls * (time.monotonic() - began)
            after = _cpu(servers, janus, phones)
            for name in cpu:
                cpu[name] += after[name] - before[name]
            onsets += [_onset_ms(phone) for phone in phones]
        finally:
            await asyncio.gather(*(phone.stop() for phone in phones))
        await asyncio.sleep(1.0)  # the gateway ends the calls
    return {"calls": calls, "rounds": rounds, "call_seconds": round(call_seconds, 1),
            "onset_ms": pooled(o for o in onsets if o is not None), "heard_replies": sum(o is not None for o in onsets),
            "cpu_ms_per_call_s": {name: round(1000 * used / call_seconds, 1) for name, used in cpu.items()}}


def _cpu(servers: dict[str, Server], janus: Janus, phones: list[Phone]) -> dict[str, float]:
    assert janus.process is not None
    used = {name: server.cpu_seconds() for name, server in servers.items()}
    used["janus"] = cpu_seconds(janus.process.pid)
    used["phones"] = sum(cpu_seconds(phone.process.pid) for phone in phones if phone.process)
    return used


def _onset_ms(phone: Phone) -> float | None:
    """Utterance end -> reply start at the phone, in ms; None if the reply was not heard (similarity < 0.8)."""
    sent, rate = phone.recording("enc")
    heard, _ = phone.recording("dec")
    utterance = sent[int(LEAD_S * rate):int((LEAD_S + SPEECH_S) * rate)]
    score, lag = best_match(utterance, heard)
    if score < 0.8:
        return None
    heard_starts_at = (sent.size - heard.size) / rate
    return round(1000 * (heard_starts_at + lag / rate - LEAD_S - SPEECH_S), 1)


def rows(phone: dict[str, Any] | None) -> list[Row]:
    """The phone figures for the benchmark's table."""
    if not phone:
        return []
    out = []
    for calls, figures in phone.items():
        onset, cpu = figures["onset_ms"], figures["cpu_ms_per_call_s"]
        heard = f"{figures['heard_replies']}/{figures['calls'] * figures['rounds']} replies heard"
        out += [
            Row(f"phone ({calls} call(s)): utterance end -> reply starts at the phone, p50/p95 ({heard})",
                "no samples" if not onset["count"] else f"{onset['p50']:.0f} / {onset['p95']:.0f} ms",
                "(earlier try: 714-800 ms)"),
            Row(f"phone ({calls} call(s)): CPU per phone call-second, gateway / bridge",
                f"{cpu['gateway']:.1f} / {cpu['bridge']:.1f} ms"),
            Row(f"phone ({calls} call(s)): CPU per phone call-second, Janus / the baresip phones",
                f"{cpu['janus']:.1f} / {cpu['phones']:.1f} ms"),
        ]
    return out
