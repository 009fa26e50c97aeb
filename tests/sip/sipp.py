"""SIPp (Debian's sip-tester) as a phone that does exactly what a scenario says: keys as SIP INFO, a MESSAGE.

baresip 1.0 sends keys only as RFC 2833 events; SIP INFO (`application/dtmf-relay`) is what many PBXs and
desk phones send, so a SIPp scenario plays that phone: INVITE (PCMU and telephone-event), its RTP from a
file of u-law audio, one INFO per key, BYE.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import numpy as np

from tests.sip.programs import free_port

HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="{name}">"""

INVITE = """
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Keypad" <sip:keypad@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:keypad@[local_ip]:[local_port]>
Max-Forwards: 70
X-Ticket: 4711
Content-Type: application/sdp
Content-Length: [len]

v=0
o=keypad 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Keypad" <sip:keypad@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:keypad@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <nop><action><exec rtp_stream="{audio},-1,0"/></action></nop>
  <pause milliseconds="1500"/>"""

INFO = """
  <send><![CDATA[
INFO [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Keypad" <sip:keypad@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: {cseq} INFO
Contact: <sip:keypad@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/dtmf-relay
Content-Length: [len]

Signal={digit}
Duration={duration_ms}
]]></send>
  <recv response="200"/>
  <pause milliseconds="400"/>"""

BYE = """
  <pause milliseconds="1000"/>
  <send><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Keypad" <sip:keypad@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: {cseq} BYE
Contact: <sip:keypad@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""

HUNG_UP = """
  <recv request="BYE" timeout="30000">
    <action>
      <ereg regexp="{reason}" search_in="hdr" header="Reason:" check_it="true" assign_to="reason"/>
    </action>
  </recv>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <Reference variables="reason"/>
</scenario>
"""

MESSAGE = """
  <send retrans="500"><![CDATA[
MESSAGE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pager@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 MESSAGE
Max-Forwards: 70
Content-Type: text/plain
Content-Length: [len]

hello bridge
]]></send>
  <recv response="200"/>
</scenario>
"""


def keypad_scenario(audio: Path, keys: list[tuple[str, int]]) -> str:
    """INVITE, then one SIP INFO per (key, duration_ms), then BYE."""
    infos = "".join(INFO.format(cseq=2 + i, digit=digit, duration_ms=ms) for i, (digit, ms) in enumerate(keys))
    return HEAD.format(name="keypad") + INVITE.format(audio=audio) + infos + BYE.format(cseq=2 + len(keys))


def hung_up_scenario(audio: Path, reason: str) -> str:
    """INVITE, then wait for the far end's BYE, whose Reason header must match the regular expression `reason`."""
    return HEAD.format(name="hung-up") + INVITE.format(audio=audio) + HUNG_UP.format(reason=reason)


def message_scenario() -> str:
    return HEAD.format(name="pager") + MESSAGE


def ulaw(samples: np.ndarray) -> bytes:
    """G.711 u-law bytes of int16 samples (the file SIPp's rtp_stream sends as PCMU)."""
    x = np.clip(samples.astype(np.int32), -32635, 32635)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.abs(x) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


async def run_scenario(folder: Path, scenario: str, target: str, service: str, timeout: float = 30.0) -> str:
    """Run one call of `scenario` against `target` (host:port); returns SIPp's log. Raises if SIPp fails."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scenario.xml"
    path.write_text(scenario)
    log = folder / "sipp.log"
    process = await asyncio.create_subprocess_exec(
        "sipp", target, "-sf", str(path), "-s", service, "-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)),
        "-mi", "127.0.0.1", "-mp", str(free_port(socket.SOCK_DGRAM)), "-m", "1", "-nostdin",
        "-timeout", f"{timeout:.0f}s",
        "-trace_err", "-trace_msg", cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(timeout + 5):
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    messages = "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob("scenario_*_messages.log")))
    errors = "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob("scenario_*_errors.log")))
    if code != 0:
        raise AssertionError(f"SIPp failed ({code}):\n{errors[-3000:]}\n{messages[-3000:]}")
    log.write_text(messages)
    return messages
