"""What the demo page tells its user when a call cannot be made, and whether it says it talks to an emulator."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

from gateway.app import create_app
from gateway.config import Settings
from tests.fixtures import Gateway
from tests.browser.conftest import OpenPage, connect, hang_up

pytestmark = pytest.mark.browser


async def connect_fails_with(page: Page, message: str | re.Pattern[str]) -> None:
    """Press Connect; the call must not be made, and the page must say `message` and be ready to retry."""
    await page.click("#connect")
    await expect(page.locator("#message")).to_contain_text(message)
    await expect(page.locator("#message")).to_have_attribute("data-tone", "error")
    await expect(page.locator("#state")).to_have_text("not connected")
    await expect(page.locator("#connect")).to_be_enabled()
    await expect(page.locator("#hangup")).to_be_disabled()


async def test_a_denied_microphone_is_explained(no_leaks: None, gateway: Gateway, open_page: OpenPage) -> None:
    page = await open_page(gateway.url, grant_microphone=False)
    await connect_fails_with(page, "Microphone access was denied. Allow the microphone for this site")
    assert gateway.calls.created_total == 0, "a call was placed without a microphone"


@pytest.mark.parametrize("settings", [{"max_calls": 0}], indirect=True)
async def test_a_busy_gateway_is_explained(demo: Page, gateway: Gateway) -> None:
    await connect_fails_with(demo, "The gateway is busy: it is at its limit of calls. Try again in 5 s.")


@pytest.mark.parametrize("settings", [{"call_burst": 1, "call_rate_per_minute": 1}], indirect=True)
async def test_a_rate_limited_page_is_told_when_to_try_again(demo: Page, gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:  # the one call this address may place now goes elsewhere
        async with http.post(f"{gateway.url}/whip", data="v=0", headers={"Content-Type": "application/sdp"}) as response:
            assert response.status == 400
    await connect_fails_with(demo, re.compile(r"Too many calls from your address in a short time\. Try again in \d+ s\."))
    assert gateway.calls.created_total == 0


@pytest.mark.parametrize("settings", [{"api_tokens": ("sesame",)}], indirect=True)
async def test_an_unauthorised_page_is_told_so_and_a_client_token_lets_it_in_once(
    demo: Page, gateway: Gateway, open_page: OpenPage
) -> None:
    needs_token = "Not authorised: this gateway needs a client token."
    await expect(demo.locator("#message")).to_contain_text(needs_token)  # the profile list was refused
    await connect_fails_with(demo, needs_token)
    await expect(demo.locator("#events")).to_contain_text(needs_token)  # said by Connect, not just at load

    api_token_page = await open_page(f"{gateway.url}/?token=sesame")
    await expect(api_token_page.locator("#message")).to_contain_text("This page takes a client token in ?token=")

    async with aiohttp.ClientSession() as http:  # what the app's backend does
        async with http.post(f"{gateway.url}/v1/tokens", json={"profile": "phone"},
                             headers={"Authorization": "Bearer sesame"}) as response:
            token = (await response.json())["token"]
    page = await open_page(f"{gateway.url}/?token={token}")
    await expect(page.locator("#profile option")).to_have_text(["phone"])
    assert (await connect(page)) in {call.id for call in gateway.calls}
    await hang_up(page, gateway)
    await connect_fails_with(page, "This page's access token has placed all the calls it may")


async def test_an_unreachable_gateway_is_explained(demo: Page, gateway: Gateway) -> None:
    await expect(demo.locator("#profile option")).to_have_text(["default", "phone"])
    await gateway.server.close()
    await connect_fails_with(demo, "Cannot reach the gateway: it is not running or the network is down.")


async def test_the_emulator_note_shows_when_the_gateway_runs_on_the_emulator(demo: Page) -> None:
    note = demo.locator("#emulator-note")
    await expect(note).to_be_visible()
    await expect(note).to_contain_text("every reply is your own voice")


async def test_no_emulator_note_when_the_gateway_talks_to_a_real_live_api(
    aiohttp_server: Any, open_page: OpenPage
) -> None:
    # A Live endpoint that is never reached: the page only reads the profile list.
    settings = Settings(ice_addresses=("127.0.0.1",), live_base_url="https://127.0.0.1:9")
    server = await aiohttp_server(create_app(settings), host="127.0.0.1")
    page = await open_page(str(server.make_url("/")))
    await expect(page.locator("#profile option")).to_have_text(["default", "phone"])
    await expect(page.locator("#emulator-note")).to_be_hidden()
