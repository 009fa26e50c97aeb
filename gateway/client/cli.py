"""`gateway call` (one caller, for smoke tests) and `gateway loadtest` (many, with a summary)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from gateway.client.caller import Caller, CallRefused
from gateway.client.signals import silence, speech_like
from gateway.client.wavfile import read_wav, write_wav
from gateway.rtc import restrict_host_addresses

CODECS = ("opus", "pcmu", "pcma", "g722")
TAIL_S = 6.0  # after the last audio is played, time for the reply to come back
RESUME_AFTER_S = 3.0


def add_call_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="the gateway, e.g. http://127.0.0.1:8080")
    parser.add_argument("--play", type=Path, help="16-bit WAV to use as the microphone")
    parser.add_argument("--record", type=Path, help="write what the gateway sends back to this WAV")
    parser.add_argument("--codec", choices=CODECS, help="offer only this codec")
    parser.add_argument("--seconds", type=float, help="how long to stay on the call (default: the WAV + 6 s)")
    parser.add_argument("--profile", help="conversation profile")
    parser.add_argument("--token", help="bearer token, if the gateway requires one")
    parser.add_argument("--resume-after", type=float, default=RESUME_AFTER_S, metavar="SECONDS",
                        help="resume the call through the same URL when no audio has come for this long, as when "
                             f"a fleet replica dies (default {RESUME_AFTER_S:.0f}; 0: never)")


def add_loadtest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="the gateway, e.g. http://127.0.0.1:8080")
    parser.add_argument("--calls", type=int, default=10, help="concurrent calls (default 10)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each call lasts (default 20)")
    parser.add_argument("--ramp", type=float, default=2.0, help="spread the call starts over this many seconds")
    parser.add_argument("--play", type=Path, help="16-bit WAV each caller says in a loop (default: synthetic speech)")
    parser.add_argument("--codec", choices=CODECS)
    parser.add_argument("--profile")
    parser.add_argument("--token")


def run_call(args: argparse.Namespace) -> int:
    _restrict_ice_from_environment()
    return asyncio.run(_call(args))


def run_loadtest(args: argparse.Namespace) -> int:
    _restrict_ice_from_environment()
    summary = asyncio.run(_loadtest(args))
    print(json.dumps(summary, indent=2))
    return 0 if summary["failed"] == 0 else 1


def _restrict_ice_from_environment() -> None:
    """Callers honour GATEWAY_ICE_ADDRESSES like the gateway (e.g. 127.0.0.1 for a local smoke test)."""
    addresses = [a.strip() for a in os.environ.get("GATEWAY_ICE_ADDRESSES", "").split(",") if a.strip()]
    if addresses:
        restrict_host_addresses(addresses)


def _print_event(event: dict[str, Any]) -> None:
    print(json.dumps({k: v for k, v in event.items() if not k.startswith("_")}), flush=True)


async def _call(args: argparse.Namespace) -> int:
    caller = Caller(args.url, codec=args.codec, profile=args.profile, token=args.token, on_event=_print_event,
                    resume_after_silence_s=args.resume_after or None)
    try:
        answer = await caller.connect()
    except CallRefused as exc:
        print(f"gateway call: refused: {exc}", file=sys.stderr)
        await caller.hang_up()
        return 1
    except (aiohttp.ClientError, OSError) as exc:
        print(f"gateway call: cannot reach {args.url}: {exc}", file=sys.stderr)
        await caller.hang_up()
        return 1
    print(json.dumps({"type": "call", "call_id": answer["call_id"]}), flush=True)
    seconds = args.seconds
    if args.play:
        pcm, rate = read_wav(args.play)
        played = caller.say(pcm, rate)
        seconds = seconds or played + TAIL_S
    await asyncio.sleep(seconds or 10.0)
    await caller.hang_up()
    if args.record:
        write_wav(args.record, caller.recording.audio(), caller.recording.rate or 48_000)
        print(f"gateway call: recorded {len(caller.recording.frames) * 0.02:.1f} s to {args.record}", file=sys.stderr)
    return 0 if caller.of_type("ready") else 1


async def _loadtest(args: argparse.Namespace) -> dict[str, Any]:
    if args.play:
        pcm, rate = read_wav(args.play)
    else:
        rate = 16_000
        pcm = np.concatenate([speech_like(1.5, seed=1, rate=rate), silence(1.5, rate=rate)])
    results = await asyncio.gather(
        *(_one_caller(args, i, pcm, rate, delay=args.ramp * i / max(1, args.calls)) for i in range(args.calls))
    )
    ok = [r for r in results if "error" not in r]
    return {
        "calls": args.calls,
        "connected": len(ok),
        "failed": len(results) - len(ok),
        "errors": sorted({r["error"] for r in results if "error" in r}),
        "answer_ms": _spread([r["answer_ms"] for r in ok]),
        "media_connected_ms": _spread([r["media_ms"] for r in ok if r.get("media_ms") is not None]),
        "replies": sum(r["replies"] for r in ok),
        "reply_audio_s": round(sum(r["audio_s"] for r in ok), 1),
    }


async def _one_caller(args: argparse.Namespace, index: int, pcm: np.ndarray, rate: int, delay: float) -> dict[str, Any]:
    await asyncio.sleep(delay)
    caller = Caller(args.url, codec=args.codec, profile=args.profile, token=args.token)
    started = time.monotonic()
    try:
        await caller.connect()
        answered = time.monotonic()
        await asyncio.wait_for(caller.connected.wait(), timeout=10)
        media = time.monotonic()
        end = started + args.seconds
        while time.monotonic() < end:
            await asyncio.sleep(min(caller.say(pcm, rate), end - time.monotonic()))
        return {
            "answer_ms": (answered - started) * 1000,
            "media_ms": (media - started) * 1000,
            "replies": len(caller.of_type("turn_complete")),
            "audio_s": len(caller.recording.frames) * 0.02,
        }
    except (CallRefused, aiohttp.ClientError, OSError, TimeoutError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        await caller.hang_up()


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    p50, p95 = np.percentile(values, [50, 95])
    return {"p50": round(float(p50), 1), "p95": round(float(p95), 1), "max": round(max(values), 1)}
