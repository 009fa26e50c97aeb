"""What SIP means to the bridge: status codes for the gateway's refusals, DTMF in SIP INFO, call metadata.

Pure functions over Janus's SIP plugin events (janus_sip.c documents their shapes), so they are tested alone.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.bridges.gateway_api import GatewayRefused

DTMF_DIGITS = frozenset("0123456789*#ABCD")
DEFAULT_DTMF_MS = 100  # SIP INFO without a Duration line
HEADER_PREFIX = "X-"  # custom headers of an INVITE that reach the call's metadata


def decline_code(refusal: GatewayRefused) -> int:
    """The SIP status that tells the phone why the gateway would not take its call."""
    if refusal.status in (400, 415, 422):
        return 488  # Not Acceptable Here: no codec in common, or an offer the gateway cannot use
    if refusal.status in (429, 503):
        return 486  # Busy Here: the gateway is full, draining, or this bridge is over its call rate
    return 503  # Service Unavailable: the gateway is unreachable or broken; the phone may try elsewhere


def dial_outcome(status: int) -> str:
    """How a dial that was not answered ended, from the final SIP status."""
    if status in (486, 600):
        return "busy"
    if status in (408, 480, 487):
        return "no_answer"
    return "rejected"


def dtmf_from_info(content_type: str | None, content: str | None) -> tuple[str, int] | None:
    """The key and duration (ms) in a SIP INFO body (`application/dtmf-relay` or `application/dtmf`)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    text = (content or "").strip()
    if kind == "application/dtmf":
        digit = text[:1].upper()
        return (digit, DEFAULT_DTMF_MS) if len(text) == 1 and digit in DTMF_DIGITS else None
    if kind != "application/dtmf-relay":
        return None
    fields = {key.strip().lower(): value.strip() for key, _, value in
              (line.partition("=") for line in re.split(r"[\r\n]+", text)) if value}
    digit = fields.get("signal", "").upper()
    if digit == "10":
        digit = "*"  # some phones send the event number instead of the key
    elif digit == "11":
        digit = "#"
    if len(digit) != 1 or digit not in DTMF_DIGITS:
        return None
    duration = fields.get("duration", "")
    return digit, int(duration) if duration.isdigit() and 0 < int(duration) < 60_000 else DEFAULT_DTMF_MS


def user_of(uri: str | None) -> str | None:
    """`sip:+15551234@host;params` -> `+15551234`."""
    match = re.match(r"^<?sips?:([^@;>]+)@", uri or "")
    return match.group(1) if match else None


def inbound_metadata(account: str, result: dict[str, Any], sip_call_id: str | None) -> dict[str, Any]:
    """What the call's `metadata` says about a phone call: who called, which number, the SIP dialog."""
    headers = result.get("headers") or {}
    return {
        "bridge": "janus-sip",
        "direction": "inbound",
        "account": account,
        "from": result.get("username"),
        "from_name": (result.get("displayname") or "").strip('" ') or None,  # Janus keeps the quotes
        "to": result.get("callee"),
        "dialled": user_of(result.get("callee")),
        "sip_call_id": sip_call_id,
        "sip_headers": {k: v for k, v in headers.items() if isinstance(v, str)},
    }


def reason_header(gateway_reason: str | None) -> dict[str, str]:
    """A SIP Reason header for a BYE the gateway caused, so the far end's logs say why."""
    text = re.sub(r"[^A-Za-z0-9_.-]", "_", gateway_reason or "ended")
    return {"Reason": f'SIP;cause=200;text="gateway {text}"'}
