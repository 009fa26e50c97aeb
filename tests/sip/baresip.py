"""A real SIP phone for tests: Debian's baresip 1.0, driven over its ctrl_tcp JSON interface.

It plays a WAV as its microphone (aufile), records what it sends and what it hears (sndfile writes both
sides at the codec's rate), and offers exactly the codecs a test asks for. baresip hangs up when its WAV
ends, so the WAV's length is the longest the call can last.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from gateway.client.wavfile import read_wav, write_wav
from tests.sip.programs import free_port, stop, wait_for_port

MIC_RATE = 16_000  # aufile needs the file at ausrc_srate; baresip resamples to the codec's rate
CODEC_NAMES = {"pcmu": "PCMU/8000/1", "pcma": "PCMA/8000/1", "g722": "G722/16000/1", "gsm": "GSM/8000/1"}
MODULES = ("g711.so", "g722.so", "gsm.so", "aufile.so", "alsa.so", "sndfile.so")


class Phone:
    def __init__(self, folder: Path, paced_alsa: Path, name: str = "phone", codec: str = "pcmu",
                 auto_answer: bool = False) -> None:
        self.folder = folder
        self.name = name
        self.codec = codec
        self.shim = paced_alsa
        self.auto_answer = auto_answer
        self.sip_port = 0
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._responses: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._read_task: asyncio.Task[None] | None = None

    @property
    def uri(self) -> str:
        return f"sip:{self.name}@127.0.0.1:{self.sip_port}"

    @property
    def recordings(self) -> Path:
        return self.folder / "recordings"

    async def start(self, microphone: np.ndarray) -> None:
        """Start baresip with `microphone` (16 kHz int16) as the audio it sends on every call."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.recordings.mkdir(exist_ok=True)
        write_wav(self.folder / "microphone.wav", microphone, MIC_RATE)
        self.sip_port = free_port(pair=True)  # baresip listens on the port and, for TLS, the next one
        control = free_port()
        self._write_config(control)
        with open(self.folder / "baresip.log", "ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                "baresip", "-f", str(self.folder), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env={**os.environ, "LD_PRELOAD": str(self.shim)},
            )
        await wait_for_port(control, self.process)
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", control)
        self._read_task = asyncio.create_task(self._read(), name=f"phone-{self.name}")

    async def stop(self) -> None:
        if self._read_task is not None:
            self._read_task.cancel()
        if self._writer is not None:
            self._writer.close()
        if self.process is not None:
            await stop(self.process)

    async def command(self, name: str, params: str = "") -> dict[str, Any]:
        assert self._writer is not None
        message = json.dumps({"command": name, "params": params, "token": name}).encode()
        self._writer.write(str(len(message)).encode() + b":" + message + b",")
        await self._writer.drain()
        async with asyncio.timeout(5):
            return await self._responses.get()

    async def dial(self, uri: str) -> None:
        response = await self.command("dial", uri)
        assert response.get("ok"), response

    async def wait_for(self, *types: str, timeout: float = 15.0) -> dict[str, Any]:
        """The next call event of one of `types` (CALL_ESTABLISHED, CALL_CLOSED, CALL_INCOMING...)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if event.get("type") in types:
                    return event

    def recording(self, side: str) -> tuple[np.ndarray, int]:
        """What the phone sent ("enc") or heard ("dec") on its last call."""
        files = sorted(self.recordings.glob(f"dump-*-{side}.wav"))
        assert files, f"{self.name} recorded nothing"
        return read_wav(files[-1])

    async def _read(self) -> None:
        """ctrl_tcp speaks netstrings (`<length>:<json>,`), for responses and events alike."""
        assert self._reader is not None
        while True:
            length = int((await self._reader.readuntil(b":"))[:-1])
            message = json.loads(await self._reader.readexactly(length))
            await self._reader.readexactly(1)
            await (self._responses if message.get("response") else self.events).put(message)

    def _write_config(self, control_port: int) -> None:
        modules = "\n".join(f"module {module}" for module in MODULES)
        (self.folder / "config").write_text(f"""
poll_method epoll
sip_listen 127.0.0.1:{self.sip_port}
net_interface 127.0.0.1
audio_player alsa,null
audio_alert alsa,null
audio_source aufile,{self.folder / 'microphone.wav'}
ausrc_srate {MIC_RATE}
auplay_srate {MIC_RATE}
module_path /usr/lib/baresip/modules
{modules}
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{control_port}
snd_path {self.recordings}
""")
        answer = ";answermode=auto" if self.auto_answer else ""
        (self.folder / "accounts").write_text(
            f"<sip:{self.name}@127.0.0.1>;regint=0;audio_codecs={CODEC_NAMES[self.codec]}{answer}\n")
