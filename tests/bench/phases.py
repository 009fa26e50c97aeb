"""The benchmark's phases: each drives callers against running servers and returns its raw figures."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.bench import receive_path, replies, report, scenarios
from tests.bench.procs import CpuSample, Server

REPLY_S = 2.0  # whole replies
BARGE_IN_S = 2.5  # utterances spoken over replies
STALL_REPLY_S = 2.5
UPLINK_WINDOWS = (("uplink", "handoff_latency_ms"), ("live", "uplink_latency_ms"))


@dataclass(frozen=True)
class Plan:
    latency_rounds: int  # rounds of concurrent Opus calls in the latency phase (each call: a new pacing phase)
    latency_calls: int
    whole_replies: int  # per latency call, before its barge-ins
    barge_ins: int  # per latency call
    settle_s: float  # after calls connect, before a CPU window opens
    window_s: float  # each CPU window (side by side: in total, over its rounds)
    one_call_rounds: int  # side by side with 1 call: this many calls one after the other
    ten_call_rounds: int
    stall_calls: int
    stall_turns: int
    floor_steps: tuple[Any, ...]  # floor.Step: (calls, rounds, both sides together?)


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_speed_ms() -> float:
    """CPU ms this process needs for a fixed piece of pure-Python work: the machine's speed right now.

    On a shared VM the same work costs tens of percent more at some times than at others, which moves every
    CPU figure; taken before each phase, it lets runs be compared.
    """
    began, total = time.process_time(), 0
    for i in range(1_000_000):
        total += i * i
    return round(1000 * (time.process_time() - began), 1)


def underruns(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    downlinks = [s["downlink"] for s in snapshots]
    return {key: sum(d[key] for d in downlinks) for key in ("underruns", "underrun_ms", "replies")}


def across(snapshots: list[dict[str, Any]], section: str, key: str) -> report.Summary:
    return report.across_calls([(s.get(section) or {}).get(key) for s in snapshots])


def prebuffers(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    values = [s["downlink"]["prebuffer_ms"] for s in snapshots]
    return {"max": max(values), "values": values}


async def latency(gateway: Server, plan: Plan, others: list[Server]) -> dict[str, Any]:
    """Rounds of calls: a whole reply, then barge-ins. The gateway's windows, and the caller's view of the cut.

    Browsers send Opus (48 kHz); phone bridges G.711 (8 kHz), whose resampling to 16 kHz delays more: the
    last round is PCMU, and uplink figures are given per codec.
    """
    url, before = gateway.url, CpuSample.take([gateway, *others])
    snapshots: list[dict[str, Any]] = []
    e2e, event_ms, onsets, missing = [], [], [], 0
    codecs = ["opus"] * plan.latency_rounds + ["pcmu"]
    for round_, codec in enumerate(codecs):
        progress(f"latency: round {round_ + 1}/{len(codecs)}, {plan.latency_calls} {codec} calls")
        async with scenarios.calls(url, plan.latency_calls, codec=codec) as callers:
            seeds = [100 * (round_ * plan.latency_calls + i) for i in range(len(callers))]
            found = await asyncio.gather(*(_talk_then_barge_in(c, plan, seed) for c, seed in zip(callers, seeds)))
            snapshots += await scenarios.snapshots(url, callers)
        for caller, (heard, barge_ins) in zip(callers, found):
            onsets += [reply.onset_ms for reply in heard if reply.onset_ms is not None]
            for barge_in in barge_ins:
                event_ms.append(1000 * (barge_in.interrupted_at - barge_in.speech_at))
                silent_after = scenarios.silence_after(caller, barge_in.speech_at)
                if silent_after is None:
                    missing += 1
                else:
                    e2e.append(1000 * silent_after)
    by_codec = {codec: [s for s in snapshots if s["codec"] == codec] for codec in dict.fromkeys(codecs)}
    return {
        "calls": len(snapshots),
        "uplink_by_codec": {
            codec: {key: across(calls, section, key) for section, key in UPLINK_WINDOWS}
            for codec, calls in by_codec.items()
        },
        "start_latency_ms": across(snapshots, "downlink", "start_latency_ms"),
        "downlink_latency_ms": across(snapshots, "downlink", "downlink_latency_ms"),
        "prebuffer_ms": prebuffers(snapshots),
        "cut_latency_ms": across(snapshots, "downlink", "cut_latency_ms"),
        "barge_in_e2e_ms": {**report.pooled(e2e), "not_found": missing},
        "interrupted_event_ms": report.pooled(event_ms),
        "onset_ms": report.pooled(onsets),
        "caller_receive_path_ms": receive_path.delay_ms.summary(),
        "underruns": underruns(snapshots),
        "cpu_ms_per_s": CpuSample.take([gateway, *others]).rates_since(before),
        "per_call": snapshots,
    }


async def _talk_then_barge_in(caller: Any, plan: Plan, seed: int) -> tuple[list[replies.Reply],
                                                                           list[scenarios.BargeIn]]:
    """A barge-in that is never answered (an overloaded machine) is left out: the reply may have ended first."""
    said = [scenarios.utterance(REPLY_S, seed + turn) for turn in range(plan.whole_replies)]
    first_clip = len(caller.mic.clip_starts)
    await scenarios.whole_replies(caller, plan.whole_replies, REPLY_S, seed)
    heard = await asyncio.to_thread(replies.judge, caller, said, first_clip)
    try:
        return heard, await scenarios.barge_ins(caller, plan.barge_ins, BARGE_IN_S, seed + 50)
    except TimeoutError:
        progress("latency: a barge-in got no `interrupted` in time; left out")
        return heard, []


async def warm_up(gateway: Server) -> float:
    """One call with a whole reply (imports, first-use caches); returns the idle RSS after it ended."""
    progress("load: warm-up call")
    async with scenarios.calls(gateway.url, 1) as callers:
        await scenarios.whole_replies(callers[0], 1, REPLY_S, seed=7)
    await wait_for_no_calls(gateway.url)
    return gateway.rss_mib()


async def alone(gateway: Server, count: int, plan: Plan, others: list[Server]) -> dict[str, Any]:
    """`count` calls talking on the gateway alone: its CPU, memory, pacing and underruns under that load."""
    progress(f"load: {count} calls on the gateway alone, {plan.window_s:.0f} s window")
    async with scenarios.calls(gateway.url, count) as callers:
        _queue_talk(callers, plan)
        await asyncio.sleep(plan.settle_s)  # past call setup, into the talk cycles
        before = CpuSample.take([gateway, *others])
        await asyncio.sleep(plan.window_s)  # the measurement window itself
        after = CpuSample.take([gateway, *others])
        rates, waits = after.rates_since(before), after.waits_since(before)
        rss = gateway.rss_mib()
        snapshots = await scenarios.snapshots(gateway.url, callers)
    return {
        "calls": count,
        "window_s": plan.window_s,
        "cpu_ms_per_call_s": rates[gateway.name] / count,
        "cpu_ms_per_s": rates,
        "gateway_loop_waiting_for_cpu_ms_per_s": waits[gateway.name],
        "rss_mib": round(rss, 1),
        "pacing_jitter_ms": across(snapshots, "downlink", "pacing_jitter_ms"),
        "underruns": underruns(snapshots),
        "resyncs": sum(s["downlink"]["resyncs"] for s in snapshots),
    }


async def side_by_side(gateway: Server, echo: Server, count: int, rounds: int, plan: Plan,
                       others: list[Server]) -> dict[str, Any]:
    """`count` calls on the gateway and `count` on the echo at the same time, the same audio on both.

    Measured together so that both see the same machine: on a shared VM the speed of the same work drifts by
    tens of percent within minutes, more than the 20% being tested. And in `rounds` sets of calls one after
    another, each measured for window_s / rounds: what one call costs depends on how its 20 ms timers happen
    to line up (with a single call the gateway's CPU varied 1.1-1.5x the echo's from call to call, steady
    within a call), so several calls are pooled. The ratio is over all rounds; each round's shows the spread.
    """
    progress(f"load: {count} call(s) each on the gateway and the echo, side by side, {rounds} x "
             f"{plan.window_s / rounds:.0f} s")
    processes = [gateway, echo, *others]
    per_round, waits, snapshots = [], [], []
    for _ in range(rounds):
        async with contextlib.AsyncExitStack() as stack:
            on_gateway = await stack.enter_async_context(scenarios.calls(gateway.url, count))
            on_echo = await stack.enter_async_context(scenarios.calls(echo.url, count, events=False))
            _queue_talk(on_gateway, plan)
            _queue_talk(on_echo, plan)
            await asyncio.sleep(plan.settle_s)
            before = CpuSample.take(processes)
            await asyncio.sleep(plan.window_s / rounds)
            after = CpuSample.take(processes)
            snapshots += await scenarios.snapshots(gateway.url, on_gateway)
        per_round.append(after.rates_since(before))
        waits.append(after.waits_since(before))
    mean = {name: round(sum(r[name] for r in per_round) / rounds, 1) for name in per_round[0]}
    ratios = [r[gateway.name] / r[echo.name] for r in per_round]
    return {
        "calls": count,
        "rounds": rounds,
        "window_s": plan.window_s,
        "gateway_cpu_ms_per_call_s": mean[gateway.name] / count,
        "echo_cpu_ms_per_call_s": mean[echo.name] / count,
        "ratio": mean[gateway.name] / mean[echo.name],
        "round_ratio_min": min(ratios),
        "round_ratio_max": max(ratios),
        "cpu_ms_per_s": mean,
        "gateway_loop_waiting_for_cpu_ms_per_s": round(sum(w[gateway.name] for w in waits) / rounds, 1),
        "rounds_ms_per_s": per_round,
        "pacing_jitter_ms": across(snapshots, "downlink", "pacing_jitter_ms"),
        "underruns": underruns(snapshots),
    }


def _queue_talk(callers: list[Any], plan: Plan) -> None:
    """Utterance/silence cycles for the whole phase; the n-th caller says the same on the gateway and the echo."""
    for index, caller in enumerate(callers):
        scenarios.queue_talk(caller, plan.settle_s + plan.window_s + 5, seed=index)


async def wait_for_no_calls(url: str) -> None:
    """Poll /readyz until the gateway has ended every call (teardown is asynchronous)."""
    async with aiohttp.ClientSession() as http, asyncio.timeout(30):
        while True:
            async with http.get(f"{url}/readyz") as response:
                if (await response.json()).get("calls") == 0:
                    return
            await asyncio.sleep(0.1)


async def stall(gateway: Server, plan: Plan, others: list[Server]) -> dict[str, Any]:
    """Whole replies from an emulator that stalls inside them: underruns and gaps, and where the prebuffer goes."""
    progress(f"stall: {plan.stall_calls} calls x {plan.stall_turns} whole replies")
    before = CpuSample.take([gateway, *others])
    async with scenarios.calls(gateway.url, plan.stall_calls) as callers:
        await asyncio.gather(*(scenarios.whole_replies(c, plan.stall_turns, STALL_REPLY_S, seed=1000 + 10 * i)
                               for i, c in enumerate(callers)))
        snapshots = await scenarios.snapshots(gateway.url, callers)
    return {"underruns": underruns(snapshots), "prebuffer_ms": prebuffers(snapshots),
            "start_latency_ms": across(snapshots, "downlink", "start_latency_ms"),
            "cpu_ms_per_s": CpuSample.take([gateway, *others]).rates_since(before), "per_call": snapshots}
