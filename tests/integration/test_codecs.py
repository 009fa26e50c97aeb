"""Every codec end to end: an offer carrying only that codec is answered with it, and the reply is faithful."""

from __future__ import annotations

import pytest
from aiortc.sdp import SessionDescription

from gateway.client.signals import speech_like
from gateway.media.resample import resample
from tests.audio import best_match
from tests.integration.test_call import RATE, heard, say_and_hear_reply

# What each codec can carry at best: narrowband codecs lose everything above 4 kHz.
BANDWIDTH_RATE = {"opus": 16_000, "g722": 16_000, "pcmu": 8_000, "pcma": 8_000}


@pytest.mark.parametrize("codec", ["opus", "pcmu", "pcma", "g722"])
async def test_an_offer_with_only_one_codec_is_answered_with_it_and_carries_the_voice(make_caller, codec: str) -> None:
    caller = make_caller(codec=codec)
    answer = await caller.connect()
    (audio,) = [m for m in SessionDescription.parse(answer["sdp"]).media if m.kind == "audio"]
    assert [c.name.lower() for c in audio.rtp.codecs] == [codec]
    ready = await caller.wait_for("ready")
    assert ready["codec"] == codec

    utterance = speech_like(1.2, seed=60)
    await say_and_hear_reply(caller, utterance)
    # Compare with what the codec can carry: the utterance band-limited to the codec's rate.
    narrow = BANDWIDTH_RATE[codec]
    reference = resample(resample(utterance, RATE, narrow), narrow, RATE) if narrow != RATE else utterance
    score, _ = best_match(reference, heard(caller))
    assert score > 0.8, f"{codec}: the reply correlates only {score:.2f} with what was said"
