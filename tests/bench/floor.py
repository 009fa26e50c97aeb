"""The floor: the gateway against a bare aiortc parrot (parrot_server.py), the same callers and speech on both.

Each call is a conversation of FLOOR_TURNS whole replies (the one-call rounds then speak over FLOOR_BARGE_INS
more). Per side and per number of concurrent calls: server CPU per call-second over the conversations, each
reply's similarity to what was said and its onset at the caller (replies.py), barge-in at the caller (speech
starts -> received audio silent), and RSS idle and after every call has ended.

With 1 and 5 calls both sides run at the same time (their CPU ratio is taken from one window on one machine:
this VM's speed drifts by tens of percent within minutes). With 10, the sides take turns in alternate rounds:
20 callers in this one process, 20 server calls and the emulator are more than two cores can run, so at the
same time every reply on both sides would be damaged by the machine rather than by either server.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from dataclasses import dataclass, field
from typing import Any

from gateway.client.caller import Caller
from gateway.memory import COLLECT_EVERY_S
from tests.bench import phases, replies, report, scenarios
from tests.bench.procs import OTHERS, OWN, CpuSample, Server

FLOOR_TURNS = 3
FLOOR_BARGE_INS = 2  # per call, in the one-call rounds only
UTTERANCE_S = 2.0
# Before RSS is read after the calls, on both sides: one period of `gateway serve`'s garbage collection and heap
# trim (gateway/memory.py), which an idle server gets to within that long.
AFTER_CALLS_S = COLLECT_EVERY_S + 1


@dataclass(frozen=True)
class Step:
    calls: int
    rounds: int
    together: bool  # both sides at once; otherwise in turn, alternating round by round


@dataclass
class Tally:
    """One side's figures for one step."""

    cpu_ms: float = 0.0  # server CPU over the conversations
    call_seconds: float = 0.0
    others_ms_per_s: float = 0.0  # processes not ours, the worst round
    callers_ms_per_s: float = 0.0  # this process, the worst round
    heard: list[tuple[int, replies.Reply]] = field(default_factory=list)  # (utterance, what came back)
    barge_in_ms: list[float] = field(default_factory=list)
    barge_ins_missed: int = 0


async def floor(gateway: Server, parrot: Server, steps: list[Step], others: list[Server]) -> dict[str, Any]:
    sides = {"gateway": gateway, "parrot": parrot}
    idle = {name: await _idle_rss(server) for name, server in sides.items()}
    found: dict[int, dict[str, Tally]] = {}
    seed = 0
    for step in steps:
        tallies = found[step.calls] = {name: Tally() for name in sides}
        for round_ in range(step.rounds):
            phases.progress(f"floor: {step.calls} call(s) on each side, {'together' if step.together else 'in turn'},"
                            f" round {round_ + 1}/{step.rounds}")
            groups = [list(sides)] if step.together else [[name] for name in sides]
            for names in groups if round_ % 2 == 0 else groups[::-1]:
                await _round({n: sides[n] for n in names}, step.calls, seed, tallies, [gateway, parrot, *others])
            seed += step.calls * FLOOR_TURNS  # every caller of a round says other utterances
    for server in sides.values():
        await phases.wait_for_no_calls(server.url)
    await asyncio.sleep(AFTER_CALLS_S)
    after = {name: round(server.rss_mib(), 1) for name, server in sides.items()}
    return _summary(found, idle, after, steps)


async def _idle_rss(server: Server) -> float:
    await phases.warm_up(server)
    return round(server.rss_mib(), 1)


async def _round(servers: dict[str, Server], count: int, seed: int, tallies: dict[str, Tally],
                 measured: list[Server]) -> None:
    """`count` calls on each of `servers` at once, the n-th caller of each saying the same."""
    barge_ins = FLOOR_BARGE_INS if count == 1 else 0
    async with contextlib.AsyncExitStack() as stack:
        callers = {name: await stack.enter_async_context(scenarios.calls(server.url, count))
                   for name, server in servers.items()}
        before = CpuSample.take(measured)
        results = await asyncio.gather(*(_conversation(c, seed + i * FLOOR_TURNS, barge_ins)
                                         for group in callers.values() for i, c in enumerate(group)))
        after = CpuSample.take(measured)
    seconds = after.at - before.at
    rates = after.rates_since(before)
    index = 0
    for name, server in servers.items():
        tally = tallies[name]
        tally.cpu_ms += rates[server.name] * seconds
        tally.call_seconds += count * seconds
        tally.others_ms_per_s = max(tally.others_ms_per_s, rates[OTHERS])
        tally.callers_ms_per_s = max(tally.callers_ms_per_s, rates[OWN])
        for _ in range(count):
            heard, cuts = results[index]
            index += 1
            tally.heard += heard
            tally.barge_in_ms += [c for c in cuts if c is not None]
            tally.barge_ins_missed += sum(c is None for c in cuts)


async def _conversation(caller: Caller, seed: int, barge_ins: int) -> tuple[list[tuple[int, replies.Reply]],
                                                                           list[float | None]]:
    """FLOOR_TURNS whole replies, then `barge_ins`; a reply that never ends (an overloaded machine) is judged
    on what arrived, and a barge-in that is never answered counts as not found."""
    said = [scenarios.utterance(UTTERANCE_S, seed + turn) for turn in range(FLOOR_TURNS)]
    first_clip = len(caller.mic.clip_starts)
    for turn in range(FLOOR_TURNS):
        with contextlib.suppress(TimeoutError):
            await scenarios.whole_replies(caller, 1, UTTERANCE_S, seed + turn)
    heard = [((seed + turn) % scenarios.UTTERANCES, reply)
             for turn, reply in enumerate(await asyncio.to_thread(replies.judge, caller, said, first_clip))]
    cuts: list[float | None] = []
    if barge_ins:
        try:
            found = await scenarios.barge_ins(caller, barge_ins, UTTERANCE_S, seed + 50)
        except TimeoutError:
            return heard, [None] * barge_ins
        for barge_in in found:
            silent_after = scenarios.silence_after(caller, barge_in.speech_at)
            cuts.append(None if silent_after is None else 1000 * silent_after)
    return heard, cuts


def _summary(found: dict[int, dict[str, Tally]], idle: dict[str, float], after: dict[str, float],
             steps: list[Step]) -> dict[str, Any]:
    one_call = {name: replies.one_call_similarity(tally.heard) for name, tally in found[1].items()}
    by_calls = {}
    for step in steps:
        sides = {}
        for name, tally in found[step.calls].items():
            similarities = [r.similarity for _, r in tally.heard]
            onsets = [r.onset_ms for _, r in tally.heard if r.onset_ms is not None]
            sides[name] = {
                "cpu_ms_per_call_s": round(tally.cpu_ms / tally.call_seconds, 1),
                "replies": len(tally.heard),
                "damaged": len(replies.damaged(tally.heard, one_call[name])),
                "similarity_min": round(min(similarities), 3),
                "similarity_median": round(statistics.median(similarities), 3),
                "onset_ms": report.pooled(onsets),
                "barge_in_e2e_ms": {**report.pooled(tally.barge_in_ms), "not_found": tally.barge_ins_missed},
                "similarities": [round(s, 3) for s in similarities],
                "cpu_ms_per_s": {OTHERS: tally.others_ms_per_s, OWN: tally.callers_ms_per_s},
            }
        sides["ratio"] = sides["gateway"]["cpu_ms_per_call_s"] / sides["parrot"]["cpu_ms_per_call_s"]
        by_calls[str(step.calls)] = {"together": step.together, "rounds": step.rounds, **sides}
    return {
        "one_call_similarity": {name: {str(k): round(v, 3) for k, v in sorted(by_utterance.items())}
                                for name, by_utterance in one_call.items()},
        "damage_margin": replies.DAMAGE_MARGIN,
        "calls": by_calls,
        "rss_mib": {name: {"idle": idle[name], "after": after[name]} for name in idle},
        "calls_served_after_warm_up": sum(step.calls * step.rounds for step in steps),
    }


def rows(figures: dict[str, Any]) -> list[report.Row]:
    """The floor's figures, the gateway's beside the parrot's."""
    steps, rss, one_call = figures["calls"], figures["rss_mib"], figures["one_call_similarity"]
    out = []
    for calls, step in steps.items():
        gateway, parrot = step["gateway"], step["parrot"]
        how = "together" if step["together"] else "in turn"
        out.append(report.Row(
            f"floor, {calls} call(s) each ({how}, {step['rounds']} round(s)): CPU per call-second, gateway | parrot",
            f"{gateway['cpu_ms_per_call_s']:.1f} | {parrot['cpu_ms_per_call_s']:.1f} ms (ratio {step['ratio']:.2f})",
            "ratio <= 1.00", report.check(step["ratio"] <= 1.0)))
    for calls, step in steps.items():
        gateway, parrot = step["gateway"], step["parrot"]
        out.append(report.Row(
            f"floor, {calls} call(s): damaged replies (similarity < one-call - {figures['damage_margin']}), worst",
            f"{_damage(gateway)} | {_damage(parrot)}", "gateway 0", report.check(gateway["damaged"] == 0)))
    for calls, step in steps.items():
        out.append(report.Row(f"floor, {calls} call(s): reply onset at the caller, p50/p95, gateway | parrot",
                              f"{_p50_p95(step['gateway']['onset_ms'])} | {_p50_p95(step['parrot']['onset_ms'])}"))
    one = steps["1"]
    out += [
        report.Row("floor, 1 call: barge-in at the caller, speech starts -> silent, p50/p95, gateway | parrot",
                   f"{_p50_p95(one['gateway']['barge_in_e2e_ms'])} | {_p50_p95(one['parrot']['barge_in_e2e_ms'])}"),
        report.Row("floor: one-call reply similarity by utterance (min-max of the medians), gateway | parrot",
                   f"{_span(one_call['gateway'])} | {_span(one_call['parrot'])}"),
        report.Row(f"floor: RSS idle -> after {figures['calls_served_after_warm_up']} calls, gateway | parrot",
                   f"{rss['gateway']['idle']:.0f} -> {rss['gateway']['after']:.0f} | "
                   f"{rss['parrot']['idle']:.0f} -> {rss['parrot']['after']:.0f} MiB",
                   "gateway after <= parrot after + 20",
                   report.check(rss["gateway"]["after"] <= rss["parrot"]["after"] + 20)),
    ]
    return out


def _span(by_utterance: dict[str, float]) -> str:
    return f"{min(by_utterance.values()):.3f}-{max(by_utterance.values()):.3f}"


def _damage(side: dict[str, Any]) -> str:
    return f"{side['damaged']}/{side['replies']} (min {side['similarity_min']:.2f})"


def _p50_p95(summary: report.Summary) -> str:
    if not summary.get("count"):
        return "none"
    return f"{summary['p50']:.0f} / {summary['p95']:.0f} ms"
