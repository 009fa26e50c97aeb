"""What a call reports: `GET /v1/calls/<id>` (its snapshot) and the counters /metrics sums over every call."""

from __future__ import annotations

from typing import Any

from gateway.calls.call import Call


def counters(call: Call) -> dict[str, int]:
    stats = call.live.stats
    underruns = call.downlink.stats().get("underruns", 0) if call.downlink else 0
    return {"live_reconnects": stats.reconnects, "live_handovers": stats.handovers, "playout_underruns": underruns}


def snapshot(call: Call) -> dict[str, Any]:
    """State, codec, durations and counters of every part (uplink, downlink, Live), and the caller's metadata."""
    leg, live = call.leg, call.live
    return {
        "call_id": call.id,
        "state": call.state.value,
        "conversation": call.conversation.state.value if call.conversation.state else None,
        "profile": call.profile.name,
        "model": call.profile.model,
        "codec": leg.codec if leg else None,
        "created_at": call.created_at,
        "duration_s": round(call.duration_s, 3),
        "attachments": call.attachments,
        "end_reason": call.end_reason,
        "ended_at": call.ended_at,
        "on_hold": bool(leg and leg.on_hold),
        "uplink": leg.uplink.stats() if leg and leg.uplink else None,
        "downlink": call.downlink.stats() if call.downlink else None,
        "live": {**vars(live.stats), "handle": bool(live.handle), "uplink_backlog_s": round(live.uplink_backlog_s, 3),
                 "uplink_latency_ms": live.uplink_latency_ms.summary()},
        "events": {"received": call.events.received, "rejected": call.events.rejected},
        "metadata": call.metadata,
    }
