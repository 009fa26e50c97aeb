"""stop() closes every connection and leaves no task, socket or file behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from google.genai import errors

from gateway.emulator import Emulator, EmulatorConfig

from .conftest import MODEL, Recorder, client_for, live_config, send_audio
from .signals import utterance


async def test_stop_closes_connections_and_leaves_no_task_socket_or_file(tmp_path: Path) -> None:
    before = asyncio.all_tasks()
    emu = Emulator(EmulatorConfig(mode="realtime", lifetime_s=60.0))
    await emu.start()
    cert_dir, port = emu.ca_file.parent, emu.port
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as replying, \
            client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as stalled:
        async with Recorder(replying) as rec_replying, Recorder(stalled) as rec_stalled:
            await send_audio(replying, utterance(2.0)[0])
            await rec_replying.next("audio")  # a reply task and a lifetime timer are running
            emu.connections[1].stall(None)
            await emu.stop()
            closed = [await rec_replying.closed(), await rec_stalled.closed()]
    assert all(isinstance(e, errors.APIError) and e.code == 1001 for e in closed)
    assert [c.closed_code for c in emu.connections] == [1001, 1001]
    assert asyncio.all_tasks() - before - {asyncio.current_task()} == set()
    assert not cert_dir.exists()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_a_given_state_dir_is_kept_but_the_certificate_files_are_removed(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(state_dir=tmp_path / "emulator")) as emu:
        assert emu.ca_file.parent == tmp_path / "emulator"
        assert {p.name for p in emu.ca_file.parent.iterdir()} == {"emulator-cert.pem", "emulator-key.pem"}
        assert (emu.ca_file.parent / "emulator-key.pem").stat().st_mode & 0o077 == 0
    assert (tmp_path / "emulator").is_dir() and not any((tmp_path / "emulator").iterdir())


async def test_stop_is_idempotent_and_an_emulator_cannot_start_twice() -> None:
    emu = Emulator()
    await emu.start()
    with pytest.raises(RuntimeError):
        await emu.start()
    await emu.stop()
    await emu.stop()
    with pytest.raises(RuntimeError):
        emu.url


async def test_a_long_run_keeps_only_the_newest_closed_connections(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.emulator.state.MAX_CLOSED_KEPT", 2)
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as held_open:
        for _ in range(4):
            async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()):
                pass
        async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()):
            ids = [conn.id for conn in emu.connections]
        await held_open.send_realtime_input(text="still here")
    # The open one stays, however old; of the closed, at most the newest two (the last may still be closing).
    assert ids[0] == 1 and ids[-1] == 6 and 2 not in ids and len(ids) <= 4
