"""The access log keeps a client token sent in a URL out of its lines, and still says what was asked."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web

from gateway.api.access_log import AccessLogger

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwYWdlIn0.c2lnbmF0dXJl"


async def page(request: web.Request) -> web.Response:
    return web.Response(text="page")


async def test_a_token_in_the_address_or_the_referer_is_not_logged(aiohttp_server, aiohttp_client,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    app = web.Application()
    app.router.add_get("/", page)
    client = await aiohttp_client(await aiohttp_server(app, access_log_class=AccessLogger))
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        async with client.get(f"/?profile=phone&token={TOKEN}",
                              headers={"Referer": f"https://example.test/?token={TOKEN}"}) as response:
            assert response.status == 200
        async with client.get("/?profile=phone", headers={"Referer": f"http://[::1/?token={TOKEN}"}) as response:
            assert response.status == 200  # a Referer no URL parser takes is still logged, and still redacted
    lines = [record.getMessage() for record in caplog.records if record.name == "aiohttp.access"]
    assert len(lines) == 2 and TOKEN not in "\n".join(lines)
    assert '"GET /?profile=phone&token=*** HTTP/1.1" 200 ' in lines[0]
    assert '"https://example.test/?token=***"' in lines[0]
    assert '"GET /?profile=phone HTTP/1.1" 200 ' in lines[1] and '"http://[::1/?token=***"' in lines[1]
