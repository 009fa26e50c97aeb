"""What the benchmark's bare aiortc servers (echo_server.py, parrot_server.py) share: the gateway's signalling.

They answer the gateway's `POST /v1/calls` JSON shape and `DELETE /v1/calls/<id>`, and `/healthz` and `/readyz`
with the number of calls, so the benchmark's callers and phases drive them exactly as they drive the gateway.
What a server does with each peer connection is its `on_peer` hook, called before the offer is applied.
"""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Callable

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from gateway.rtc import restrict_host_addresses

PEERS = web.AppKey("peers", dict)


def serve(description: str, on_peer: Callable[[RTCPeerConnection], None]) -> None:
    """Parse `--port PORT` and serve on 127.0.0.1 until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    restrict_host_addresses(["127.0.0.1"])

    async def create_call(request: web.Request) -> web.Response:
        body = await request.json()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        call_id = secrets.token_urlsafe(12)
        request.app[PEERS][call_id] = pc
        on_peer(pc)
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

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "calls": len(request.app[PEERS])})

    async def close_all(app: web.Application) -> None:
        for pc in app[PEERS].values():
            await pc.close()

    app = web.Application()
    app[PEERS] = {}
    app.router.add_post("/v1/calls", create_call)
    app.router.add_delete("/v1/calls/{call_id}", delete_call)
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", health)
    app.on_shutdown.append(close_all)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)
