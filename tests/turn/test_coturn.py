"""Per-call TURN credentials against Debian's coturn (use-auth-secret): callers and the gateway both relay."""

from __future__ import annotations

import re

import aiohttp
import pytest
from aioice import stun

from gateway.client.signals import speech_like
from gateway.config import Settings
from gateway.turn import turn_credentials
from tests.audio import best_match
from tests.fixtures import Gateway
from tests.integration.access import audio_offer
from tests.integration.test_call import heard, say_and_hear_reply
from tests.coturn import Coturn, allocate, error_code

pytestmark = pytest.mark.turn


@pytest.fixture
def settings(coturn: Coturn) -> Settings:
    """The gateway relays through coturn only, with its own per-call credentials."""
    return Settings(ice_addresses=("127.0.0.1",), drain_s=2.0, turn_secret=coturn.secret,
                    turn_urls=(coturn.url,), ice_relay_only=True)


def candidate_types(sdp: str) -> set[str]:
    return set(re.findall(r"^a=candidate:.* typ (\w+)", sdp, flags=re.MULTILINE))


async def test_a_caller_reaches_the_gateway_through_the_relay_with_the_credentials_it_was_given(
    gateway: Gateway, coturn: Coturn, make_caller
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.url}/v1/tokens", json={}) as response:
            minted = await response.json()
    [server] = minted["ice_servers"]
    assert server["urls"] == [coturn.url] and server["username"].endswith(f":{minted['token_id']}")

    # The first peer connection uses the token's credentials, relay only, like the gateway's own.
    caller = make_caller(token=minted["token"], ice_servers=minted["ice_servers"], relay_only=True)
    answer = await caller.connect()
    await caller.wait_for("ready")
    await caller.connected.wait()
    assert candidate_types(caller.pc.localDescription.sdp) == {"relay"}
    assert candidate_types(answer["sdp"]) == {"relay"}
    utterance = speech_like(0.8, seed=41)
    await say_and_hear_reply(caller, utterance)
    assert best_match(utterance, heard(caller))[0] > 0.8, "the reply did not come back through the relay"

    # A resume uses the call's own credentials, from the answer.
    [call_server] = answer["ice_servers"]
    assert call_server["username"].endswith(f":{caller.call_id}")
    caller.ice_servers = answer["ice_servers"]
    await caller.resume()
    await caller.connected.wait()
    assert candidate_types(caller.pc.localDescription.sdp) == {"relay"}
    await say_and_hear_reply(caller, speech_like(0.8, seed=42))
    replies = [e["text"] for e in caller.of_type("transcript") if e["role"] == "model" and e["final"]]
    assert replies == ["reply 1", "reply 2"]

    allocations = coturn.log_text()
    for user in (minted["token_id"], caller.call_id, f"gateway.{caller.call_id}"):
        assert re.search(rf"user <\d+:{re.escape(user)}>: .*ALLOCATE processed, success", allocations), user


async def test_the_sdp_answer_carries_the_credentials_as_whip_link_headers(
    gateway: Gateway, coturn: Coturn, no_leaks: None
) -> None:
    pc, offer = await audio_offer()
    async with aiohttp.ClientSession() as http:
        whip = http.post(f"{gateway.url}/whip", data=offer, headers={"Content-Type": "application/sdp"})
        async with whip as response:
            assert response.status == 201
            links = response.headers.getall("Link")
            location = response.headers["Location"]
        async with http.delete(f"{gateway.url}{location}") as response:
            assert response.status == 204
    await pc.close()
    [link] = links
    match = re.fullmatch(r'<(?P<url>[^>]+)>; rel="ice-server"; username="(?P<username>[^"]+)"; '
                         r'credential="(?P<credential>[^"]+)"; credential-type="password"', link)
    assert match and match["url"] == coturn.url and match["username"].endswith(":" + location.rsplit("/", 1)[1])
    await allocate(coturn.port, match["username"], match["credential"])  # coturn takes them


async def test_coturn_refuses_credentials_past_their_time_and_of_another_secret(coturn: Coturn) -> None:
    await allocate(coturn.port, *turn_credentials(coturn.secret, "call-1", ttl_s=60))
    for username, password in (
        turn_credentials(coturn.secret, "call-1", ttl_s=-60),
        turn_credentials("another-secret-0123456789abcdef", "call-1", ttl_s=60),
    ):
        with pytest.raises(stun.TransactionFailed) as refused:
            await allocate(coturn.port, username, password)
        assert error_code(refused.value) == 401, username
