"""Client tokens over HTTP against a running gateway: what a minted token may do, and every refusal."""

from __future__ import annotations

import base64
import json
import time

import aiohttp
import pytest

from gateway.api.client_tokens import TokenSigner
from gateway.client.caller import CallRefused
from gateway.config import Settings
from tests.fixtures import Gateway, answered
from tests.integration.access import (
    ACCESS_SETTINGS,
    API_TOKEN,
    NEW_KEY,
    OLD_KEY,
    PHONE_ONLY_TOKEN,
    audio_offer,
    bearer,
    mint,
    refusal,
)



@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    """The gateway of tests/fixtures.py with API tokens and signing keys; parametrize indirectly for more."""
    return Settings(ice_addresses=("127.0.0.1",), drain_s=2.0, **ACCESS_SETTINGS, **getattr(request, "param", {}))


async def test_a_minted_token_creates_one_call_of_its_profile_and_follows_it_up(gateway: Gateway, make_caller) -> None:
    async with aiohttp.ClientSession() as http:
        minted = await mint(http, gateway.url, profile="phone", metadata={"user": "42"})
        assert minted["expires_at"] > time.time() + 200 and minted["ice_servers"] == []

        caller = await answered(make_caller(token=minted["token"]))  # names no profile: the token's applies
        assert (await caller.wait_for("ready"))["profile"] == "phone"
        url = f"{gateway.url}/v1/calls/{caller.call_id}"
        async with http.get(url, headers=bearer(minted["token"])) as response:
            assert response.status == 200
            assert (await response.json())["metadata"] == {"user": "42"}
        async with http.get(f"{gateway.url}/v1/profiles", headers=bearer(minted["token"])) as response:
            listed = await response.json()
            assert [p["name"] for p in listed["profiles"]] == ["phone"] and listed["default"] == "phone"

        second = make_caller(token=minted["token"])
        with pytest.raises(CallRefused) as refused:
            await second.connect()
        assert (refused.value.status, refused.value.code) == (403, "token_used_up")
        async with http.patch(url, data="a=end-of-candidates\r\n", headers={
                **bearer(minted["token"]), "Content-Type": "application/trickle-ice-sdpfrag"}) as response:
            assert response.status == 204
    await caller.hang_up()  # DELETE with the client token
    assert len(gateway.calls) == 0
    caller.call_id = None


async def test_a_refused_request_spends_none_of_the_tokens_calls(gateway: Gateway, make_caller) -> None:
    async with aiohttp.ClientSession() as http:
        token = (await mint(http, gateway.url, profile="phone"))["token"]
        pc, offer = await audio_offer()
        for body, expected in (
            ({"type": "offer", "sdp": offer, "profile": "default"}, (403, "profile_not_allowed")),
            ({"type": "offer", "sdp": "v=0 nothing"}, (400, "malformed_sdp")),
            ({"type": "offer", "sdp": offer, "metadata": {"a": [[[[1]]]]}}, (400, "bad_metadata")),
        ):
            async with http.post(f"{gateway.url}/v1/calls", json=body, headers=bearer(token)) as response:
                assert await refusal(response) == expected
        await pc.close()
    await answered(make_caller(token=token))


async def test_expired_tampered_and_unknown_key_tokens_are_refused(gateway: Gateway, no_leaks: None) -> None:
    expired, _ = TokenSigner([NEW_KEY], clock=lambda: time.time() - 600).mint("default", 300, 1, {})
    unknown_key, _ = TokenSigner([("k9", "unknown-secret-0123456789abcdefgh")]).mint("default", 300, 1, {})
    async with aiohttp.ClientSession() as http:
        phone = (await mint(http, gateway.url, profile="phone"))["token"]
        header, payload, signature = phone.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        forged = base64.urlsafe_b64encode(json.dumps({**claims, "profile": "default"}).encode()).rstrip(b"=")
        tampered = f"{header}.{forged.decode()}.{signature}"
        for token, expected in (
            (expired, (401, "token_expired")),
            (tampered, (403, "forbidden")),
            (unknown_key, (403, "forbidden")),
            ("not-a-token", (403, "forbidden")),
        ):
            async with http.post(f"{gateway.url}/v1/calls", json={"type": "offer", "sdp": "v=0"},
                                 headers=bearer(token)) as response:
                assert await refusal(response) == expected, token
                if expected[0] == 401:
                    assert response.headers["WWW-Authenticate"].startswith("Bearer")
        async with http.post(f"{gateway.url}/v1/calls", json={"type": "offer", "sdp": "v=0"}) as response:
            assert await refusal(response) == (401, "unauthorized")
    assert gateway.calls.created_total == 0


async def test_a_token_of_a_key_rotated_out_of_signing_still_verifies(gateway: Gateway, make_caller) -> None:
    token, _ = TokenSigner([OLD_KEY]).mint("default", 60, 1, {})
    await answered(make_caller(token=token))


async def test_a_client_token_never_mints_and_reaches_no_other_call(gateway: Gateway, make_caller) -> None:
    other = await answered(make_caller(token=API_TOKEN))
    async with aiohttp.ClientSession() as http:
        token = (await mint(http, gateway.url))["token"]
        async with http.post(f"{gateway.url}/v1/tokens", json={}, headers=bearer(token)) as response:
            assert await refusal(response) == (403, "out_of_scope")
        for method in ("GET", "DELETE"):
            async with http.request(method, f"{gateway.url}/v1/calls/{other.call_id}",
                                    headers=bearer(token)) as response:
                assert await refusal(response) == (403, "out_of_scope")
        async with http.get(f"{gateway.url}/v1/calls/{other.call_id}",
                            headers=bearer(other.resume_token)) as response:
            assert response.status == 200, "a call's resume token reaches that call"
        mine = await answered(make_caller(token=token))
        async with http.get(f"{gateway.url}/v1/calls/{other.call_id}",
                            headers=bearer(mine.resume_token)) as response:
            assert await refusal(response) == (403, "forbidden"), "a resume token reaches only its own call"
    assert len(gateway.calls) == 2


async def test_the_created_call_resumes_with_its_resume_token_once_the_client_token_has_expired(
    gateway: Gateway, make_caller
) -> None:
    expired, _ = TokenSigner([NEW_KEY], clock=lambda: time.time() - 600).mint("default", 300, 1, {})
    async with aiohttp.ClientSession() as http:
        token = (await mint(http, gateway.url))["token"]
        caller = await answered(make_caller(token=token))
        await caller.resume()  # with the client token: a follow-up, not a second call
        await caller.connected.wait()
        caller.token = expired  # the page's token has expired meanwhile
        answer = await caller.resume()
        await caller.connected.wait()
        assert answer["call_id"] == caller.call_id
        async with http.get(f"{gateway.url}/v1/calls/{caller.call_id}", headers=bearer(expired)) as response:
            assert await refusal(response) == (401, "token_expired"), "an expired token is refused everywhere else"
        url = f"{gateway.url}/v1/calls/{caller.call_id}"
        async with http.get(url, headers=bearer(caller.resume_token)) as response:
            assert (await response.json())["attachments"] == 3
        async with http.delete(url, headers=bearer(caller.resume_token)) as response:
            assert response.status == 204
        # The ended call is remembered: its resume token still reads why it ended, and a second hang-up
        # (a page's unload handler after the call ended) is a 204, not a 403.
        async with http.get(url, headers=bearer(caller.resume_token)) as response:
            assert (response.status, (await response.json())["end_reason"]) == (200, "hangup")
        async with http.delete(url, headers=bearer(caller.resume_token)) as response:
            assert response.status == 204
        async with http.delete(url, headers=bearer(caller.resume_token[::-1])) as response:
            assert await refusal(response) == (403, "forbidden")
    assert len(gateway.calls) == 0
    caller.call_id = None


async def test_an_api_tokens_profile_list_holds_for_calls_and_for_minting(gateway: Gateway, make_caller) -> None:
    with pytest.raises(CallRefused) as refused:
        await make_caller(token=PHONE_ONLY_TOKEN).connect()
    assert (refused.value.status, refused.value.code) == (403, "profile_not_allowed")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.url}/v1/tokens", json={}, headers=bearer(PHONE_ONLY_TOKEN)) as response:
            assert await refusal(response) == (403, "profile_not_allowed")
        await mint(http, gateway.url, PHONE_ONLY_TOKEN, profile="phone")
    await answered(make_caller(token=PHONE_ONLY_TOKEN, profile="phone"))


@pytest.mark.parametrize(("body", "expected"), [
    ({"ttl_s": 7200}, (400, "bad_request")),
    ({"ttl_s": "300"}, (400, "bad_request")),
    ({"max_calls": 0}, (400, "bad_request")),
    ({"max_calls": True}, (400, "bad_request")),
    ({"profile": "nope"}, (400, "unknown_profile")),
    ({"profiles": "phone"}, (400, "bad_request")),
    ({"metadata": {"note": "x" * 5000}}, (400, "bad_metadata")),
    ([], (400, "bad_json")),
])
async def test_a_bad_mint_request_gets_its_error(gateway: Gateway, body: object, expected: tuple[int, str]) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.url}/v1/tokens", json=body, headers=bearer(API_TOKEN)) as response:
            assert await refusal(response) == expected
        async with http.post(f"{gateway.url}/v1/tokens", data="{}", headers=bearer(API_TOKEN)) as response:
            assert await refusal(response) == (415, "unsupported_media_type")


@pytest.mark.parametrize(
    "settings", [{"call_burst": 1, "call_rate_per_minute": 1, "client_ip_header": "X-Forwarded-For"}], indirect=True
)
async def test_the_call_rate_is_kept_per_token_as_well_as_per_address(gateway: Gateway, no_leaks: None) -> None:
    async with aiohttp.ClientSession() as http:
        async def whip(token: str, address: str) -> int:
            headers = {**bearer(token), "Content-Type": "application/sdp", "X-Forwarded-For": address}
            async with http.post(f"{gateway.url}/whip?profile=phone", data="v=0", headers=headers) as response:
                return response.status

        assert await whip(API_TOKEN, "192.0.2.1") == 400  # a bad offer, but it spent the token's one call
        assert await whip(API_TOKEN, "192.0.2.2") == 429, "a new address does not refill the token's bucket"
        assert await whip(PHONE_ONLY_TOKEN, "192.0.2.1") == 429, "a new token does not refill the address's bucket"
        assert await whip(PHONE_ONLY_TOKEN, "192.0.2.3") == 400, "a refused call spent nothing of the token's"
