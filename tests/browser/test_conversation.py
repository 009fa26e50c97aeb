"""A conversation on the demo page in Chromium: speech and typed text in, transcripts and reply audio out."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from gateway.client.signals import RMS_DBFS
from tests.fixtures import Gateway
from tests.browser.conftest import (
    ARTIFACTS,
    MIC_RATE,
    UTTERANCE_S,
    connect,
    final_turn,
    hang_up,
    is_local_address,
)

pytestmark = pytest.mark.browser

SCREENSHOT = ARTIFACTS / "demo-mid-conversation.png"
# The reply is the utterance played back: at least half its energy must have been played out. Chromium's
# totalAudioEnergy sums (peak level)² x duration per 10 ms frame, which is above the RMS-based figure.
MIN_REPLY_ENERGY = 0.5 * UTTERANCE_S * 10 ** (RMS_DBFS / 10)


async def stats_now(page: Page) -> dict[str, Any]:
    """The page's latest getStats() summary (at most a second old)."""
    await page.wait_for_function("demo.stats !== null")
    return await page.evaluate("demo.stats")


async def next_stats(page: Page) -> dict[str, Any]:
    """The page's next getStats() summary, taken after this call."""
    since = await page.evaluate("Date.now()")
    await page.wait_for_function("since => demo.stats !== null && demo.stats.at > since", arg=since)
    return await page.evaluate("demo.stats")


async def test_a_spoken_turn_is_transcribed_answered_and_heard(demo: Page, gateway: Gateway) -> None:
    state = demo.locator("#state")
    await connect(demo)
    await expect(state).to_have_text("listening")

    await expect(final_turn(demo, "user", re.compile(r"^\[speech 1\.\d\d s\]$"))).to_have_count(1)
    await expect(state).to_have_text("speaking")
    before = await stats_now(demo)
    await expect(demo.locator(".turn.model .text")).to_have_text("reply 1")  # interim: the reply is playing
    ARTIFACTS.mkdir(exist_ok=True)
    await demo.screenshot(path=SCREENSHOT, full_page=True)
    await expect(final_turn(demo, "model", "reply 1")).to_have_count(1)
    await expect(state).to_have_text("listening")
    after = await next_stats(demo)

    received = after["totalSamplesReceived"] - before["totalSamplesReceived"]
    concealed = after["concealedSamples"] - before["concealedSamples"]
    assert received >= 0.8 * UTTERANCE_S * MIC_RATE, f"only {received} samples received during the reply"
    assert after["totalAudioEnergy"] - before["totalAudioEnergy"] > MIN_REPLY_ENERGY, "the reply was silent"
    assert concealed < 0.01 * received, f"{concealed} of {received} samples concealed during the reply"

    # The media path: the gateway's only candidate is 127.0.0.1, and Chromium's end of the pair is on this
    # machine too (loopback, or another local address: the kernel then still routes it over `lo`).
    assert after["remote"]["address"] == "127.0.0.1", after["remote"]
    assert is_local_address(after["local"]["address"]), after["local"]
    assert after["codec"] == "audio/opus"
    offer = await demo.evaluate("demo.call.pc.localDescription.sdp")
    assert ".local " not in offer, "Chromium offered mDNS names instead of its addresses"

    latencies = await demo.evaluate("demo.latencies")
    assert latencies and latencies[0]["kind"] == "speech" and 0 < latencies[0]["ms"] < 5000, latencies
    await expect(demo.locator("#d-latency")).to_contain_text(f"{latencies[-1]['ms']} ms after speech")
    await expect(demo.locator("#d-rtt")).to_have_text(re.compile(r"^\d+\.\d ms$"))
    await expect(demo.locator("#d-concealed")).to_contain_text(" of ")
    await expect(demo.locator("#d-path")).to_contain_text("→ 127.0.0.1:")

    await hang_up(demo, gateway)


@pytest.mark.parametrize("microphone", ["silence"], indirect=True)
async def test_typed_text_gets_a_reply(demo: Page, gateway: Gateway) -> None:
    await connect(demo)
    await demo.fill("#text", "hello there")
    await demo.press("#text", "Enter")
    await expect(demo.locator("#text")).to_have_value("")
    await expect(final_turn(demo, "user", "hello there")).to_have_count(1)
    await expect(final_turn(demo, "model", 'reply 1: "hello there"')).to_have_count(1)
    # The reply's tone was heard: the model's level rose after the message was sent.
    await demo.wait_for_function("demo.latencies.some((l) => l.kind === 'text')")
    await expect(demo.locator("#d-latency")).to_contain_text("ms after typed text")
    await hang_up(demo, gateway)



@pytest.mark.parametrize("microphone", ["barge-in"], indirect=True)
async def test_talking_over_a_reply_shows_the_interruption(demo: Page, gateway: Gateway) -> None:
    await expect(demo.locator("#profile option")).to_have_count(2)
    await demo.select_option("#profile", "phone")
    await connect(demo)
    await expect(demo.locator("#message")).to_contain_text("Connected (profile phone,")  # the picker's choice
    # The phone profile cuts replies itself (source "local"), but the emulator runs in-process and its own
    # interruption (source "live") usually arrives first: either says that the reply was cut.
    await expect(demo.locator("#interrupted")).to_have_text(re.compile(r"^interrupted: the (model|gateway) heard you$"))
    await expect(demo.locator("#interrupted")).to_be_visible()
    await expect(demo.locator(".turn.model.interrupted")).to_have_count(1)
    await expect(demo.locator("#events")).to_contain_text(re.compile(r"interrupted source=(live|local)"))
    await hang_up(demo, gateway)
