"""Browser origins: an allowed origin gets CORS headers and its call, another origin a 403, the gateway's own
page works with no setting, and requests without an Origin (backends, bridges) are not a browser's."""

from __future__ import annotations

import aiohttp
import pytest

from tests.fixtures import Gateway
from tests.integration.access import API_TOKEN, audio_offer, bearer, refusal

APP = "https://app.example"
ELSEWHERE = "https://elsewhere.example"


@pytest.mark.parametrize("settings", [{"allowed_origins": (APP,)}], indirect=True)
async def test_an_allowed_origin_gets_its_preflight_cors_headers_and_its_call(gateway: Gateway, no_leaks: None) -> None:
    preflight = {"Origin": APP, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    async with aiohttp.ClientSession() as http:
        async with http.options(f"{gateway.url}/v1/calls", headers=preflight) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == APP
            allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
            assert {"authorization", "content-type", "if-match", "resume-token"} <= allowed
            assert {"POST", "PATCH", "DELETE"} <= set(response.headers["Access-Control-Allow-Methods"].split(", "))

        pc, offer = await audio_offer()
        async with http.post(f"{gateway.url}/v1/calls", json={"type": "offer", "sdp": offer},
                             headers={"Origin": APP}) as response:
            assert response.status == 201
            assert response.headers["Access-Control-Allow-Origin"] == APP
            exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
            assert {"Location", "ETag", "Resume-Token", "Link", "Retry-After"} <= exposed
            assert "Origin" in response.headers.getall("Vary")
            location = response.headers["Location"]
        async with http.delete(f"{gateway.url}{location}", headers={"Origin": APP}) as response:
            assert response.status == 204 and response.headers["Access-Control-Allow-Origin"] == APP
        await pc.close()


@pytest.mark.parametrize("settings", [{"allowed_origins": (APP,)}], indirect=True)
async def test_another_origin_gets_no_cors_grant_and_its_call_is_refused(gateway: Gateway, no_leaks: None) -> None:
    async with aiohttp.ClientSession() as http:
        preflight = {"Origin": ELSEWHERE, "Access-Control-Request-Method": "POST"}
        async with http.options(f"{gateway.url}/v1/calls", headers=preflight) as response:
            assert await refusal(response) == (403, "origin_not_allowed")
            assert "Access-Control-Allow-Origin" not in response.headers
        pc, offer = await audio_offer()
        for path, kwargs in (
            ("/v1/calls", {"json": {"type": "offer", "sdp": offer}}),
            ("/whip", {"data": offer, "headers": {"Content-Type": "application/sdp"}}),
        ):
            headers = {"Origin": ELSEWHERE, **kwargs.pop("headers", {})}
            async with http.post(f"{gateway.url}{path}", headers=headers, **kwargs) as response:
                assert await refusal(response) == (403, "origin_not_allowed")
                assert "Access-Control-Allow-Origin" not in response.headers
        await pc.close()
    assert gateway.calls.created_total == 0


@pytest.mark.parametrize("settings", [{"api_tokens": (API_TOKEN,)}], indirect=True)
async def test_the_gateways_own_page_and_originless_clients_need_no_setting(gateway: Gateway, no_leaks: None) -> None:
    async with aiohttp.ClientSession() as http:
        pc, offer = await audio_offer()
        for headers in ({"Origin": gateway.url}, {}):
            async with http.post(f"{gateway.url}/v1/calls", json={"type": "offer", "sdp": offer},
                                 headers={**headers, **bearer(API_TOKEN)}) as response:
                assert response.status == 201, headers
                location = response.headers["Location"]
            async with http.delete(f"{gateway.url}{location}", headers=bearer(API_TOKEN)) as response:
                assert response.status == 204
        # An error answer to an allowed origin carries the grant too, so that the page can read why.
        async with http.get(f"{gateway.url}/v1/profiles", headers={"Origin": gateway.url}) as response:
            assert await refusal(response) == (401, "unauthorized")
            assert response.headers["Access-Control-Allow-Origin"] == gateway.url
        async with http.post(f"{gateway.url}/v1/calls", json={}, headers={"Origin": "http://localhost:1"}) as response:
            assert await refusal(response) == (403, "origin_not_allowed"), "another port is another origin"
        await pc.close()
