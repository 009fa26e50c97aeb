"""Shared by the access tests: a gateway with API tokens and signing keys, and small HTTP helpers."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiortc import RTCPeerConnection

API_TOKEN = "backend-token-0123456789abcdef"
PHONE_ONLY_TOKEN = "bridge-token-0123456789abcdef"  # may use the phone profile only
NEW_KEY = ("k2", "new-signing-secret-0123456789abcdef")
OLD_KEY = ("k1", "old-signing-secret-0123456789abcdef")  # still verifies, no longer signs
ACCESS_SETTINGS = {
    "api_tokens": (API_TOKEN, f"{PHONE_ONLY_TOKEN}:phone"),
    "token_keys": tuple(f"{kid}:{secret}" for kid, secret in (NEW_KEY, OLD_KEY)),
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def mint(http: aiohttp.ClientSession, url: str, api_token: str = API_TOKEN, **body: Any) -> dict[str, Any]:
    """POST /v1/tokens; the 201 answer."""
    async with http.post(f"{url}/v1/tokens", json=body, headers=bearer(api_token)) as response:
        answer = await response.json()
        assert response.status == 201, answer
    return answer


async def refusal(response: aiohttp.ClientResponse) -> tuple[int, str]:
    """(status, error code) of a JSON error answer."""
    body = await response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return response.status, body["error"]["code"]


async def audio_offer() -> tuple[RTCPeerConnection, str]:
    """A peer connection and its offer, for requests that need a real one (close the pc afterwards)."""
    pc = RTCPeerConnection()
    pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp
