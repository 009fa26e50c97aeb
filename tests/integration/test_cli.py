"""What a new user does: `gateway serve` with no key, then `gateway call --play --record` against it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

from gateway.client.signals import silence, speech_like
from gateway.client.wavfile import read_wav, write_wav
from tests.audio import best_match, to_rate
from tests.gateway_process import free_port, gateway_env, wait_healthy


async def test_serve_without_a_key_and_call_it_from_the_command_line(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = gateway_env(GATEWAY_PORT=str(port), GATEWAY_DRAIN_SECONDS="1")
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await wait_healthy(url, process=server)
        utterance = speech_like(1.2, seed=21)
        write_wav(tmp_path / "in.wav", np.concatenate([utterance, silence(1.0)]), 16_000)
        call = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "call", url, "--play", str(tmp_path / "in.wav"),
            "--record", str(tmp_path / "out.wav"), "--seconds", "6",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(call.communicate(), timeout=30)
        assert call.returncode == 0, stderr.decode()
        events = [json.loads(line) for line in stdout.decode().splitlines()]
        kinds = [e["type"] for e in events]
        assert "ready" in kinds and "turn_complete" in kinds, kinds
        assert {"type": "transcript", "role": "model", "text": "reply 1", "final": True} in events
        recorded, rate = read_wav(tmp_path / "out.wav")
        assert best_match(utterance, to_rate(recorded, rate, 16_000))[0] > 0.8
    finally:
        server.send_signal(signal.SIGTERM)
        _, log = await asyncio.wait_for(server.communicate(), timeout=20)
    assert server.returncode == 0, log.decode()[-2000:]
    first_lines = "\n".join(log.decode().splitlines()[:3])
    assert "emulator" in first_lines, first_lines


async def test_loadtest_places_concurrent_calls_and_summarises_them(gateway, no_leaks) -> None:
    env = {**os.environ, "GATEWAY_ICE_ADDRESSES": "127.0.0.1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "loadtest", gateway.url, "--calls", "3", "--seconds", "5", "--ramp", "0.5",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    summary = json.loads(stdout)
    assert (summary["calls"], summary["connected"], summary["failed"]) == (3, 3, 0)
    assert summary["replies"] >= 3, summary
    assert summary["answer_ms"]["p50"] > 0 and summary["reply_audio_s"] > 0
