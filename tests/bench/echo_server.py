"""A bare aiortc echo server: the CPU baseline the gateway is compared with in `make bench`.

    python tests/bench/echo_server.py --port PORT

It answers the gateway's `POST /v1/calls` JSON shape and `DELETE /v1/calls/<id>`, and sends each caller's
audio straight back: the remote track itself is the outbound track (as in aiortc's server example), so the
sender pulls frames as the receiver decodes them. Per call that is what any aiortc server pays for, and nothing
more: ICE, DTLS, SRTP both ways, Opus decode (a thread) and encode (the default executor), and the events
data channel the caller opens (accepted, never used). No resampling, no Live API, no pacing, no buffering.
"""

from __future__ import annotations

import argparse
import secrets

from aiohttp import web
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from gateway.rtc import restrict_host_addresses

PEERS = web.AppKey("peers", dict)


async def create_call(request: web.Request) -> web.Response:
    body = await request.json()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    call_id = secrets.token_urlsafe(12)
    request.app[PEERS][call_id] = pc

    @pc.on("track")
    def echo(track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            pc.addTrack(track)

    await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    answer = {"call_id": call_id, "type": "answer", "sdp": pc.localDescription.sdp, "resume_token": ""}
    return web.json_response(answer, status=201, headers={"Location": f"/v1/calls/{call_id}"})


async def delete_call(request: web.Request) -> web.Response:
    pc = request.app[PEERS].pop(request.match_info["call_id"], None)
    if pc is None:
        raise web.HTTPNotFound()
    await pc.close()
    return web.Response(status=204)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "calls": len(request.app[PEERS])})


async def close_all(app: web.Application) -> None:
    for pc in app[PEERS].values():
        await pc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    restrict_host_addresses(["127.0.0.1"])
    app = web.Application()
    app[PEERS] = {}
    app.router.add_post("/v1/calls", create_call)
    app.router.add_delete("/v1/calls/{call_id}", delete_call)
    app.router.add_get("/healthz", healthz)
    app.on_shutdown.append(close_all)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
