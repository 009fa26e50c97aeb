"""Registered accounts (a PBX's, here stood in for on 127.0.0.1): one that registers takes calls, one the
registrar refuses is reported and does not stop the others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.bridges.api import create_api
from gateway.bridges.registrar import Registrar
from gateway.bridges.settings import BridgeSettings, load_accounts
from tests.sip.conftest import running_bridge
from tests.sip.programs import Janus


class RefusingRegistrar(asyncio.DatagramProtocol):
    """Answers every REGISTER with 403 Forbidden (wrong password, as a PBX would say)."""

    def connection_made(self, transport: asyncio.DatagramTransport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        head = data.decode().split("\r\n\r\n", 1)[0].split("\r\n")
        kept = [line for line in head[1:] if line.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")]
        self.transport.sendto("\r\n".join(["SIP/2.0 403 Forbidden", *kept, "Content-Length: 0", "", ""]).encode(), addr)


@pytest.fixture
async def registrars() -> AsyncIterator[tuple[str, str]]:
    good = await Registrar.start("127.0.0.1")
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(RefusingRegistrar,
                                                                             local_addr=("127.0.0.1", 0))
    yield good.uri, "sip:127.0.0.1:%d" % transport.get_extra_info("sockname")[1]
    good.close()
    transport.close()


async def test_a_refused_account_is_reported_and_the_others_take_calls(janus: Janus, gateway, registrars,
                                                                       no_leaks: None, tmp_path: Path) -> None:
    good, refusing = registrars
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(f'[accounts.sales]\nusername = "sip:sales@127.0.0.1"\nsecret = "s"\nproxy = "{good}"\n'
                        f'max_calls = 2\n[accounts.support]\nusername = "sip:support@127.0.0.1"\nsecret = "x"\n'
                        f'proxy = "{refusing}"\n')
    settings = BridgeSettings(janus_url=janus.url, gateway_url=gateway.url, accounts=load_accounts(accounts, {}))
    async with running_bridge(settings) as bridge:
        assert bridge.announced[0] == "sip: ready sales at sip:sales@127.0.0.1"  # type: ignore[attr-defined]
        assert bridge.announced[1].startswith("sip: failed support: ")  # type: ignore[attr-defined]
        assert "403" in bridge.announced[1]  # type: ignore[attr-defined]
        server = TestServer(create_api(bridge, settings), host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as http, http.get(server.make_url("/healthz")) as response:
                health = await response.json()
        finally:
            await server.close()
        assert response.status == 200
        assert [(line["account"], line["max_calls"], "error" in line) for line in health["lines"]] == [
            ("sales", 2, False), ("support", 1, True)]
