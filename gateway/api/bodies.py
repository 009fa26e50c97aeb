"""Request bodies the API reads as JSON objects, with the errors every endpoint gives for bad ones."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.errors import GatewayError


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 400 `bad_json` otherwise (nesting too deep for the parser included)."""
    try:
        body = json.loads(await request.text())
    except (ValueError, RecursionError):
        raise GatewayError(400, "bad_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "bad_json", "the body must be a JSON object")
    return body
