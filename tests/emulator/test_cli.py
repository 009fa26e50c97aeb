"""`gateway emulator` alone: it prints its URL and CA certificate, serves the SDK, and cleans up on SIGINT."""

from __future__ import annotations

import asyncio
import signal
import ssl
import sys
from pathlib import Path

from google import genai
from google.genai import types

from .conftest import MODEL, live_config

RUN_CLI = (
    "import argparse, sys; from gateway.emulator import cli; p = argparse.ArgumentParser(); "
    "cli.add_arguments(p); sys.exit(cli.run(p.parse_args(sys.argv[1:])))"
)


async def test_the_cli_prints_url_and_ca_then_serves_until_sigint() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RUN_CLI, "--port", "0", "--mode", "realtime", "--seed", "3", "--key", "cli-key",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            lines = [(await process.stdout.readline()).decode().rstrip() for _ in range(3)]
        url = lines[0].removeprefix("Live API emulator listening on ")
        ca_file = Path(lines[1].removeprefix("CA certificate: "))
        assert url.startswith("https://127.0.0.1:") and ca_file.is_file()
        assert lines[2].endswith(f"GATEWAY_LIVE_BASE_URL={url} GATEWAY_LIVE_CA_FILE={ca_file}")

        ssl_context = ssl.create_default_context(cafile=str(ca_file))
        client = genai.Client(
            api_key="cli-key",
            http_options=types.HttpOptions(base_url=url, api_version="v1beta", async_client_args={"ssl": ssl_context}),
        )
        async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
            await session.send_realtime_input(text="hello")
            async with asyncio.timeout(10):
                transcripts = [
                    m.server_content.output_transcription.text
                    async for m in session.receive()
                    if m.server_content and m.server_content.output_transcription
                ]
        assert transcripts == ['reply 1: "hello"']
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            returncode = await process.wait()
    assert returncode == 0
    assert not ca_file.parent.exists()
