"""Session resumption: handles at turn boundaries, snapshots restored on reconnect, refusals."""

from __future__ import annotations

import pytest
from google.genai import errors

from gateway.emulator import Emulator

from .conftest import MODEL, Recorder, client_for, live_config, send_audio
from .signals import utterance


def _handles(rec: Recorder) -> list[str]:
    return [update.new_handle for update in rec.updates() if update.resumable]


async def _talk(emu: Emulator, turns: int, handle: str | None = None) -> Recorder:
    """Connect (resuming `handle` if given), speak `turns` utterances, wait for each reply and its new handle."""
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config(resume=handle)) as session:
        async with Recorder(session) as rec:
            await rec.next("resumable")
            for seed in range(turns):
                await send_audio(session, utterance(0.3, seed=seed)[0])
                await rec.next("turn_complete")
                await rec.next("resumable")
    return rec


async def test_resuming_by_the_last_handle_continues_the_turn_counter(emu: Emulator) -> None:
    first = await _talk(emu, turns=2)
    assert first.texts("output_transcription") == ["reply 1", "reply 2"]
    handle = _handles(first)[-1]
    resumed = await _talk(emu, turns=1, handle=handle)
    assert resumed.texts("output_transcription") == ["reply 3"]
    old, new = emu.connections
    assert new.resumed_from == handle and old.resumed_from is None
    assert new.lineage == old.lineage
    assert new.conversation.audio_in_samples == old.conversation.audio_in_samples + new.audio_in_samples
    assert [c["role"] for c in new.conversation.history] == ["user", "model"] * 3


async def test_updates_are_not_resumable_while_a_turn_is_in_flight(emu: Emulator) -> None:
    rec = await _talk(emu, turns=2)
    updates = [k for k in rec.kinds if k in ("resumable", "notResumable", "audio", "turn_complete")]
    collapsed = [k for i, k in enumerate(updates) if i == 0 or k != updates[i - 1]]
    assert collapsed == ["resumable"] + ["notResumable", "audio", "turn_complete", "resumable"] * 2
    assert all(update.new_handle is None for update in rec.updates() if not update.resumable)
    assert len(set(_handles(rec))) == 3  # a fresh handle at the start and after each turn


async def test_a_handle_is_a_snapshot_and_can_be_used_twice(emu: Emulator) -> None:
    first = await _talk(emu, turns=1)
    after_first = _handles(first)[-1]
    for _ in range(2):
        resumed = await _talk(emu, turns=1, handle=after_first)
        assert resumed.texts("output_transcription") == ["reply 2"]


async def test_no_updates_without_session_resumption_in_the_setup(emu: Emulator) -> None:
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await send_audio(session, utterance(0.3)[0])
            await rec.next("turn_complete")
    assert "resumable" not in rec.kinds and "notResumable" not in rec.kinds


async def test_an_unknown_handle_is_refused_with_1007(emu: Emulator) -> None:
    with pytest.raises(errors.APIError) as caught:
        async with client_for(emu).aio.live.connect(model=MODEL, config=live_config(resume="no-such-handle")):
            pass
    assert (caught.value.code, caught.value.details) == (1007, "Request contains an invalid argument.")
    refused = emu.connections[0]
    assert (refused.resumed_from, refused.closed_code, refused.conversation) == ("no-such-handle", 1007, None)


async def test_an_expired_handle_is_refused_like_an_unknown_one(emu: Emulator) -> None:
    handle = _handles(await _talk(emu, turns=1))[-1]
    emu.expire_handles()
    with pytest.raises(errors.APIError) as caught:
        async with client_for(emu).aio.live.connect(model=MODEL, config=live_config(resume=handle)):
            pass
    assert caught.value.code == 1007


async def test_exclusive_resume_refuses_a_conversation_still_open_elsewhere(make_emulator) -> None:
    emu: Emulator = await make_emulator(exclusive_resume=True)
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config(resume=None)) as held:
        async with Recorder(held) as rec:
            handle = (await rec.next("resumable")).session_resumption_update.new_handle
            with pytest.raises(errors.APIError) as caught:
                async with client_for(emu).aio.live.connect(model=MODEL, config=live_config(resume=handle)):
                    pass
    assert (caught.value.code, caught.value.details) == (1011, "The service is currently unavailable.")
    assert emu.connections[1].resumed_from == handle and emu.connections[1].closed_code == 1011
    resumed = await _talk(emu, turns=1, handle=handle)  # once the holder is gone, the handle works
    assert resumed.texts("output_transcription") == ["reply 1"]
