"""A bare aiortc echo server: the CPU baseline the gateway is compared with in `make bench`.

    python tests/bench/echo_server.py --port PORT

It sends each caller's audio straight back: the remote track itself is the outbound track (as in aiortc's
server example), so the sender pulls frames as the receiver decodes them. Per call that is what any aiortc
server pays for, and nothing more: ICE, DTLS, SRTP both ways, Opus decode (a thread) and encode (the default
executor), and the events data channel the caller opens (accepted, never used). No resampling, no Live API,
no pacing, no buffering. Signalling: bare_server.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aiortc import MediaStreamTrack, RTCPeerConnection

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: make `tests.bench` importable

from tests.bench.bare_server import serve  # noqa: E402


def echo(pc: RTCPeerConnection) -> None:
    @pc.on("track")
    def send_back(track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            pc.addTrack(track)


if __name__ == "__main__":
    serve(__doc__, echo)
