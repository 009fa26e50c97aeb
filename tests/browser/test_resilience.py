"""The demo page keeps the call going: through a lost Live connection, and through a failure of its own."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from gateway.calls.call import Call
from tests.fixtures import Gateway
from tests.browser.conftest import connect, final_turn, hang_up

pytestmark = pytest.mark.browser


async def watch_text(page: Page, selector: str) -> Callable[[], Awaitable[list[str]]]:
    """Record every text `selector` shows from now on (some last only a moment); returns a reader."""
    await page.evaluate(
        """(selector) => {
            const element = document.querySelector(selector);
            window.seenTexts = [element.textContent];
            new MutationObserver(() => window.seenTexts.push(element.textContent))
                .observe(element, { childList: true, characterData: true, subtree: true });
        }""",
        selector,
    )
    return lambda: page.evaluate("window.seenTexts")


async def still_talking(page: Page) -> None:
    """The conversation goes on: typed text gets its reply, and reply audio is heard again."""
    heard = len(await page.evaluate("demo.latencies"))
    # Type when a reply has just ended: the looping microphone is then in its long pause. Typed while it talks,
    # the text's reply would rightly be interrupted by the caller's own speech.
    await expect(page.locator("#state")).to_have_text("speaking")
    await expect(page.locator("#state")).to_have_text("listening")
    await page.fill("#text", "still there?")
    await page.press("#text", "Enter")
    await expect(final_turn(page, "model", re.compile(r'^reply [2-9]: "still there\?"$'))).to_have_count(1)
    await page.wait_for_function("heard => demo.latencies.length > heard", arg=heard)


async def test_a_dropped_live_connection_shows_reconnecting_then_recovers(demo: Page, gateway: Gateway) -> None:
    call_id = await connect(demo)
    await expect(final_turn(demo, "model", "reply 1")).to_have_count(1)
    states = await watch_text(demo, "#state")
    [connection] = gateway.emulator.active(call_id=call_id)

    await connection.drop()
    await expect(demo.locator("#message")).to_have_text(
        "The gateway reconnected to the Live API: the conversation goes on.")
    await expect(demo.locator("#events")).to_contain_text("state state=reconnecting")
    assert "reconnecting…" in await states()
    assert gateway.emulator.active(call_id=call_id) != [connection], "no new Live connection"
    await still_talking(demo)
    await hang_up(demo, gateway)


async def close_peer_connection(call: Call) -> None:
    """The gateway drops the caller's peer connection (it closes DTLS and the data channel)."""
    assert call.leg is not None
    await call.leg.pc.close()


async def stop_ice(call: Call) -> None:
    """The network path dies: nothing more gets through, and nothing says so. ICE has to notice."""
    assert call.leg is not None
    await call.leg.pc.getTransceivers()[0].receiver.transport.transport.stop()


async def say_migrate(call: Call) -> None:
    """The gateway's replica drains (fleet mode): it asks the caller to resume, which another replica answers."""
    call.events.send({"type": "migrate", "reason": "draining", "within_s": 30})


@pytest.mark.parametrize("breakage", [close_peer_connection, stop_ice, say_migrate],
                         ids=["gateway-closes", "network-dies", "gateway-says-migrate"])
async def test_the_page_resumes_its_call_when_its_connection_fails(
    demo: Page, gateway: Gateway, breakage: Callable[[Call], Awaitable[None]]
) -> None:
    call_id = await connect(demo)
    await expect(final_turn(demo, "model", "reply 1")).to_have_count(1)
    first_token = await demo.evaluate("demo.call.resumeToken")
    states = await watch_text(demo, "#state")

    await breakage(gateway.calls.get(call_id))
    await expect(demo.locator("#message")).to_have_text(
        "Resumed: the call goes on over a new connection.", timeout=20_000)
    assert "reconnecting…" in await states()
    await expect(demo.locator("#events")).to_contain_text("resuming: ")

    call = gateway.calls.get(call_id)
    page_call = await demo.evaluate("({id: demo.call.id, token: demo.call.resumeToken, resumes: demo.call.resumes})")
    assert page_call["id"] == call_id and page_call["resumes"] == 1
    assert call.attachments == 2, "the call did not go on over a second peer connection"
    assert page_call["token"] != first_token, "the page kept the spent resume token"
    assert page_call["token"] == call.resume_token, "the page does not hold the token for the next resume"
    await still_talking(demo)
    await hang_up(demo, gateway)


@pytest.mark.parametrize("settings", [{"caller_grace_s": 1.0}], indirect=True)
async def test_the_page_says_the_call_ended_when_its_resume_is_refused(demo: Page, gateway: Gateway) -> None:
    call_id = await connect(demo)
    await expect(final_turn(demo, "model", "reply 1")).to_have_count(1)

    await stop_ice(gateway.calls.get(call_id))  # the page notices only after the gateway has given up on it
    await expect(demo.locator("#message")).to_have_text(re.compile(
        r"^Call ended: the call could not be resumed: the gateway has ended it"), timeout=20_000)
    await expect(demo.locator("#events")).to_contain_text("resuming: ")
    await expect(demo.locator("#state")).to_have_text("call ended")
    await expect(demo.locator("#connect")).to_be_enabled()
    assert len(gateway.calls) == 0
