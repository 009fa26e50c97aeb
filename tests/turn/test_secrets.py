"""No secret leaves the gateway: a whole call's answers, events, log lines and /metrics, searched for each one.

Every secret is configured and used for real: API tokens, both signing keys, the TURN secret (coturn relays
the call) and a Gemini key (an emulator that refuses any other key stands in for Gemini).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gateway.api.client_tokens import TokenSigner
from gateway.app import create_app
from gateway.client.caller import Caller
from gateway.client.signals import speech_like
from gateway.config import Settings
from gateway.emulator import Emulator, EmulatorConfig
from tests.integration import access
from tests.integration.test_call import say_and_hear_reply
from tests.coturn import Coturn

pytestmark = pytest.mark.turn

GEMINI_KEY = "gemini-key-0123456789abcdefghij"


class Recorder:
    """Requests to the gateway, keeping everything it said: status, headers and body of each answer."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url
        self.said: list[str] = []

    async def __call__(self, method: str, path: str, token: str | None = access.API_TOKEN,
                       **kwargs: Any) -> aiohttp.ClientResponse:
        headers = {**(access.bearer(token) if token else {}), **kwargs.pop("headers", {})}
        async with self.http.request(method, f"{self.url}{path}", headers=headers, **kwargs) as response:
            self.said.append(f"{response.status} {dict(response.headers)} {await response.text()}")
            return response

    def text(self) -> str:
        return "\n".join(self.said)


@pytest.fixture
async def live() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(api_key=GEMINI_KEY, seed=3)) as emulator:
        yield emulator


@pytest.fixture
async def gateway_url(aiohttp_server: Any, coturn: Coturn, live: Emulator) -> str:
    settings = Settings(ice_addresses=("127.0.0.1",), drain_s=2.0, **access.ACCESS_SETTINGS,
                        turn_secret=coturn.secret, turn_urls=(coturn.url,), live_base_url=live.url,
                        live_ca_file=live.ca_file, gemini_api_key=GEMINI_KEY)
    logging.getLogger("test").info("settings: %s", settings.describe())  # as `gateway serve` logs them
    server = await aiohttp_server(create_app(settings), host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


async def test_no_configured_secret_appears_in_answers_events_logs_or_metrics(
    gateway_url: str, coturn: Coturn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    expired, _ = TokenSigner([access.OLD_KEY], clock=lambda: time.time() - 600).mint("default", 60, 1, {})
    async with aiohttp.ClientSession() as http:
        request = Recorder(http, gateway_url)
        await request("GET", "/v1/profiles")
        minted = await (await request("POST", "/v1/tokens", json={"profile": "phone", "metadata": {"u": "7"}})).json()
        for token in (None, "wrong", expired, access.PHONE_ONLY_TOKEN, minted["token"]):  # each refused
            await request("POST", "/v1/tokens", token, json={})
        await request("POST", "/v1/calls", headers={"Origin": "https://elsewhere.example"}, json={})

        caller = Caller(gateway_url, token=minted["token"], ice_servers=minted["ice_servers"], relay_only=True)
        try:
            answer = await caller.connect()
            await caller.wait_for("ready")
            await caller.connected.wait()
            await say_and_hear_reply(caller, speech_like(0.8, seed=5))
            caller.send({"type": "text", "text": "hello"})
            await caller.wait_for("turn_complete", since=len(caller.events))
            await request("GET", f"/v1/calls/{caller.call_id}", minted["token"])
            await request("GET", "/metrics", None)
            await request("PATCH", f"/v1/calls/{caller.call_id}", caller.resume_token, data="a=end-of-candidates",
                          headers={"Content-Type": "application/trickle-ice-sdpfrag"})
        finally:
            await caller.hang_up()
        pc, offer = await access.audio_offer()  # its media never starts: the answer's headers are what count
        whip = await request("POST", "/whip?profile=phone", data=offer, headers={"Content-Type": "application/sdp"})
        await request("DELETE", whip.headers["Location"])
        await pc.close()
        await request("GET", "/metrics", None)

    traces = {"answers": request.text() + json.dumps(answer), "events": json.dumps(caller.events),
              "logs": caplog.text}
    # What should be there is: the search below looks at a real call's traces.
    assert caller.call_id in traces["logs"] and minted["token_id"] in traces["logs"]
    assert "ice-server" in traces["answers"] and "gateway_calls_created" in traces["answers"]
    assert '"transcript"' in traces["events"] and "ALLOCATE" in coturn.log_text()
    secrets = {"API token": access.API_TOKEN, "API token with profiles": access.PHONE_ONLY_TOKEN,
               "signing key": access.NEW_KEY[1], "old signing key": access.OLD_KEY[1],
               "TURN secret": coturn.secret, "Gemini key": GEMINI_KEY}
    leaked = {(name, kind) for name, secret in secrets.items() for kind, text in traces.items() if secret in text}
    assert not leaked, f"secrets found: {sorted(leaked)}"
