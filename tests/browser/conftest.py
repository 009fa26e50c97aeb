"""The demo page in Debian's Chromium, driven by Playwright, against a real gateway on 127.0.0.1.

Each test gets the integration tests' gateway (embedded emulator) and leak check, and fresh browsers whose
fake microphone loops a WAV made here. Chromium is never downloaded: without /usr/bin/chromium the tests
are skipped, or fail when CI=true.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from gateway.client.signals import silence, speech_like
from gateway.client.wavfile import write_wav
from tests.fixtures import Gateway

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
MIC_RATE = 48_000
# One loop of the fake microphone: a pause, an utterance, then silence long enough for the emulator to end
# the turn and play the reply back, so each loop is a turn of its own.
LEAD_S, UTTERANCE_S, TAIL_S = 1.0, 1.2, 3.5
WAIT_MS = 15_000

expect.set_options(timeout=WAIT_MS)

CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    # Chromium leaves loopback out of ICE unless told; with it, a machine with no other interface still
    # connects. (Where another interface exists Chromium prefers it, but the gateway's only candidate is
    # 127.0.0.1, so the packets stay on `lo` either way.)
    "--allow-loopback-in-peer-connection",
    # Host candidates as IP addresses, not mDNS names (Chromium shows them anyway to a page holding the
    # microphone permission). NB Chromium keeps only the last --disable-features: this one replaces
    # Playwright's own list (which turns off some start-up requests to Google services).
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing and CI=true: install Debian's chromium (`make chromium` as root)")
    pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests")


@pytest.fixture(scope="session")
def wav_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fake microphone's input: 16-bit PCM at 48 kHz, which Chromium's file capture loops."""
    folder = tmp_path_factory.mktemp("microphone")
    pause, say = lambda s: silence(s, rate=MIC_RATE), lambda s, seed: speech_like(s, seed=seed, rate=MIC_RATE)
    clips = {
        "speech": np.concatenate([pause(LEAD_S), say(UTTERANCE_S, 1), pause(TAIL_S)]),
        "silence": pause(LEAD_S + UTTERANCE_S + TAIL_S),
        # The second utterance starts 1 s after the first ends: while the reply to the first is playing.
        "barge-in": np.concatenate([pause(LEAD_S), say(1.5, 2), pause(1.0), say(1.5, 3), pause(4.0)]),
    }
    for name, samples in clips.items():
        write_wav(folder / f"{name}.wav", samples, MIC_RATE)
    return {name: folder / f"{name}.wav" for name in clips}


@pytest.fixture
def microphone(request: pytest.FixtureRequest, wav_files: dict[str, Path]) -> Path:
    """What the fake microphone plays: "speech" unless a test parametrizes it indirectly."""
    return wav_files[getattr(request, "param", "speech")]


Launch = Callable[..., Awaitable[Browser]]


@pytest.fixture
async def launch(chromium: Path, microphone: Path) -> AsyncIterator[Launch]:
    """Launch Chromium (headless, its own fresh profile). `grant_microphone=False`: no fake permission UI, so
    Playwright answers the page's microphone prompt with a denial."""
    async with async_playwright() as playwright:
        browsers: list[Browser] = []

        async def launch(*, grant_microphone: bool = True) -> Browser:
            args = [*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={microphone}"]
            if grant_microphone:
                args.append("--use-fake-ui-for-media-stream")
            browser = await playwright.chromium.launch(executable_path=str(chromium), headless=True, args=args)
            browsers.append(browser)
            return browser

        yield launch
        for browser in browsers:
            await browser.close()


OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def open_page(launch: Launch) -> AsyncIterator[OpenPage]:
    """Open a URL in a new browser; when the test ends, no uncaught error may have happened in its pages."""
    errors: list[str] = []
    pages: list[Page] = []

    async def open_page(url: str, *, grant_microphone: bool = True) -> Page:
        browser = await launch(grant_microphone=grant_microphone)
        page = await browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(url)
        pages.append(page)
        return page

    yield open_page
    # A test that failed mid-call leaves its call up: end it, so that the leak check reports only leaks.
    for page in pages:
        await page.evaluate("() => window.demo?.call?.ending === false ? demo.call.hangUp().catch(() => {}) : null")
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
async def demo(no_leaks: None, gateway: Gateway, open_page: OpenPage) -> Page:
    """The demo page, served by the gateway; after the test, the gateway must have released everything."""
    return await open_page(gateway.url)


# ----- helpers for the tests -----


async def connect(page: Page) -> str:
    """Press Connect, wait until the Live session is up; returns the call id."""
    await page.click("#connect")
    await expect(page.locator("#message")).to_contain_text("Connected (profile")
    return await page.evaluate("demo.call.id")


async def hang_up(page: Page, gateway: Gateway) -> None:
    await page.click("#hangup")
    await expect(page.locator("#state")).to_have_text("call ended")
    await expect(page.locator("#message")).to_have_text("Call ended: you hung up.")
    await expect(page.locator("#connect")).to_be_enabled()
    assert len(gateway.calls) == 0, "the gateway still holds the call after the hang-up"


def final_turn(page: Page, role: str, text: str | re.Pattern[str]) -> Locator:
    """The final transcript turns of `role` whose text is exactly `text` (or matches the pattern)."""
    pattern = text if isinstance(text, re.Pattern) else re.compile(f"^{re.escape(text)}$")
    return page.locator(f".turn.{role}:not(.interim) .text").filter(has_text=pattern)


def is_local_address(address: str) -> bool:
    """True when `address` belongs to this machine (so traffic between it and 127.0.0.1 never leaves it)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True
