"""The demo page with a gateway behind Debian's coturn: its resumed connection uses the TURN credentials that
the gateway's answer gave it."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from gateway.config import Settings
from tests.browser.conftest import connect, final_turn, hang_up
from tests.browser.test_resilience import close_peer_connection, still_talking
from tests.coturn import Coturn
from tests.fixtures import Gateway

pytestmark = [pytest.mark.browser, pytest.mark.turn]


@pytest.fixture
def settings(coturn: Coturn) -> Settings:
    return Settings(ice_addresses=("127.0.0.1",), drain_s=2.0, turn_secret=coturn.secret, turn_urls=(coturn.url,))


async def test_the_page_resumes_through_the_turn_server_with_the_answers_credentials(
    demo: Page, gateway: Gateway, coturn: Coturn
) -> None:
    call_id = await connect(demo)
    await expect(final_turn(demo, "model", "reply 1")).to_have_count(1)
    [server] = await demo.evaluate("demo.call.iceServers")
    assert server["urls"] == [coturn.url] and server["username"].endswith(f":{call_id}")

    await close_peer_connection(gateway.calls.get(call_id))
    await expect(demo.locator("#message")).to_have_text(
        "Resumed: the call goes on over a new connection.", timeout=20_000)
    assert re.search(rf"user <\d+:{re.escape(call_id)}>: .*ALLOCATE processed, success", coturn.log_text()), \
        "the page's new connection did not allocate a relay with the call's credentials"
    await still_talking(demo)
    await hang_up(demo, gateway)
