"""`make bench`: a real gateway, the Live API emulator and aiortc callers on 127.0.0.1, measured against issue 4.

    .venv/bin/python tests/bench/run.py [--quick] [--phases floor,latency,...] [--json PATH]
                                                                    (default JSON: bench-results/bench.json)

Each server is its own process (so its CPU and memory are its own); the callers run here. The phases, in order
(each starts the servers it needs and stops them):
1. resampler: stop-band rejection, delay and CPU of the gateway's converters (resampler_quality.py).
2. floor (floor.py): the gateway against a bare aiortc parrot (parrot_server.py), 1, 5 and 10 calls each:
   CPU per call-second, damaged replies, reply onset and barge-in at the caller, RSS idle and after.
3. latency (burst emulator): rounds of concurrent Opus calls, then one of
   PCMU calls, each letting a whole reply play, then speaking over the next replies. Uplink (per codec),
   downlink start, barge-in cut (the gateway's windows), barge-in end to end (measured here, on the received
   audio), underruns. Within a call the downlink's 20 ms frame grid keeps one phase to the caller's, so cut
   latency barely varies inside a call: many calls with a few barge-ins each sample it properly.
4. load (burst emulator, plain `gateway serve`, and echo_server.py, a bare aiortc echo, as the baseline): a
   warm-up call; 1 call on each side by side (several calls in turn); 10 calls on the gateway alone (CPU,
   pacing jitter, underruns, memory); 10 calls on each side by side. Callers talk in utterance/silence
   cycles, the same audio on both sides. Side by side, because this VM's speed drifts by tens of percent
   between minutes.
5. stall (emulator in stall mode, with a fresh gateway): whole replies; underruns and gaps.
6. phone (phone.py): baresip phones through Janus and `gateway sip-bridge`, 1 and 5 calls: onset at the phone,
   CPU per phone call-second of the gateway and the bridge (`--phases phone` alone: about a minute).
In phases 3, 4 (10 calls alone) and 5 the gateway has a CPU to itself and everything else (this process's
callers, the emulator) shares the others: on a 2-core machine the callers cost as much CPU as the gateway, and
would otherwise show up as its jitter. The side-by-side CPU windows are not pinned: both sides share alike.
A new phase is one entry in PHASES: an async function (procs, plan) -> figures, and one figures -> table rows. It reports and never gates: the exit code is 0 whether or not targets are met.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: make `tests.bench` importable

from gateway.media.resample import StreamResampler  # noqa: E402
from gateway.rtc import restrict_host_addresses  # noqa: E402
from tests.bench import floor, phases, phone, receive_path, report  # noqa: E402
from tests.bench.phases import Plan, progress  # noqa: E402
from tests.bench.procs import ALL_CPUS, REPO, Processes, Server, own_cpu, run_interruptible  # noqa: E402
from tests.bench.resampler_quality import CONVERSIONS, GATEWAY, measure  # noqa: E402

SEED = 1
WHAT_EACH_SIDE_DOES = {
    "gateway": "per call: ICE/DTLS/SRTP, Opus decode + encode, 48k->16k and 24k->48k resampling, local VAD, "
               "journal, base64/JSON/TLS WebSocket to the emulator and back (google-genai SDK), playout buffer, "
               "paced 20 ms track, events data channel",
    "echo": "per call: ICE/DTLS/SRTP, Opus decode + encode of the caller's own frames sent straight back; "
            "no resampling, no Live API, no pacing or buffering, data channel opened but unused",
    "parrot": "per call: ICE/DTLS/SRTP, Opus decode + encode (aiortc's own path), an energy VAD at 48 kHz, "
              "each utterance replayed at 48 kHz on a paced 20 ms track, events data channel; no Live hop, "
              "no resampling",
}
FULL = Plan(latency_rounds=6, latency_calls=4, whole_replies=1, barge_ins=2, settle_s=3.0, window_s=20.0,
            one_call_rounds=5, ten_call_rounds=2, stall_calls=3, stall_turns=3,
            floor_steps=(floor.Step(1, 5, True), floor.Step(5, 1, True), floor.Step(10, 2, False)))
QUICK = Plan(latency_rounds=1, latency_calls=3, whole_replies=1, barge_ins=2, settle_s=2.5, window_s=6.0,
             one_call_rounds=2, ten_call_rounds=1, stall_calls=2, stall_turns=2,
             floor_steps=(floor.Step(1, 3, True), floor.Step(5, 1, True), floor.Step(10, 1, False)))


async def resampler_phase(procs: Processes, plan: Plan) -> list[dict[str, Any]]:
    progress("resampler figures")
    return [measure(GATEWAY, StreamResampler, *conversion) for conversion in CONVERSIONS]


async def floor_phase(procs: Processes, plan: Plan) -> dict[str, Any]:
    emulator = await procs.emulator("burst", SEED)
    gateway, parrot = await procs.gateway(emulator), await procs.parrot()
    figures = await floor.floor(gateway, parrot, list(plan.floor_steps), [emulator])
    for server in (parrot, gateway, emulator):
        await procs.stop(server)
    return {**figures, "what_each_side_does": {side: WHAT_EACH_SIDE_DOES[side] for side in ("gateway", "parrot")}}


async def latency_phase(procs: Processes, plan: Plan) -> dict[str, Any]:
    return await _gateway_on_its_own_cpu(procs, plan, "burst", phases.latency)


async def load_phase(procs: Processes, plan: Plan) -> dict[str, Any]:
    emulator = await procs.emulator("burst", SEED)
    gateway = await procs.gateway(emulator)  # a fresh process: memory is measured from its idle size
    echo = await procs.echo()
    idle = await phases.warm_up(gateway)
    one = await phases.side_by_side(gateway, echo, 1, plan.one_call_rounds, plan, [emulator])
    with own_cpu(gateway, [echo, emulator]):
        ten = await phases.alone(gateway, 10, plan, [echo, emulator])
    await phases.wait_for_no_calls(gateway.url)
    after = gateway.rss_mib()
    ten_side_by_side = await phases.side_by_side(gateway, echo, 10, plan.ten_call_rounds, plan, [emulator])
    await phases.wait_for_no_calls(gateway.url)
    after_again = gateway.rss_mib()
    for server in (echo, gateway, emulator):
        await procs.stop(server)
    memory = {"idle_mib": round(idle, 1), "calls_10_mib": ten["rss_mib"], "after_mib": round(after, 1),
              "after_second_10_mib": round(after_again, 1), "per_call_mib": (ten["rss_mib"] - idle) / 10}
    return {"alone_10": ten, "side_by_side": {"1": one, "10": ten_side_by_side}, "memory": memory,
            "what_each_side_does": {side: WHAT_EACH_SIDE_DOES[side] for side in ("gateway", "echo")}}


async def stall_phase(procs: Processes, plan: Plan) -> dict[str, Any]:
    return await _gateway_on_its_own_cpu(procs, plan, "stall", phases.stall)


async def _gateway_on_its_own_cpu(procs: Processes, plan: Plan, mode: str,
                                  measure: Callable[[Server, Plan, list[Server]], Awaitable[dict[str, Any]]]
                                  ) -> dict[str, Any]:
    """A fresh gateway and emulator (in `mode`), the gateway alone on a CPU while `measure` runs."""
    emulator = await procs.emulator(mode, SEED)
    gateway = await procs.gateway(emulator)
    with own_cpu(gateway, [emulator]):
        figures = await measure(gateway, plan, [emulator])
    for server in (gateway, emulator):
        await procs.stop(server)
    return figures


async def phone_phase(procs: Processes, plan: Plan) -> dict[str, Any]:
    return await phone.phone_phase(procs, procs.log_dir / "phone")


Phase = tuple[Callable[[Processes, Plan], Awaitable[Any]], Callable[[Any], list[report.Row]]]
PHASES: dict[str, Phase] = {  # name: (measure, its figures as table rows); run in this order
    "resampler": (resampler_phase, report.resampler_rows),
    "floor": (floor_phase, floor.rows),
    "latency": (latency_phase, report.latency_rows),
    "load": (load_phase, report.load_rows),
    "stall": (stall_phase, report.stall_rows),
    "phone": (phone_phase, phone.rows),
}


async def bench(plan: Plan, names: list[str], log_dir: Path) -> dict[str, Any]:
    restrict_host_addresses(["127.0.0.1"])
    receive_path.install()
    results: dict[str, Any] = {"machine_speed_ms": {}}
    async with Processes(log_dir) as procs:
        for name in names:
            results["machine_speed_ms"][name] = phases.machine_speed_ms()
            measure_phase, _ = PHASES[name]
            try:
                results[name] = await measure_phase(procs, plan)
            except Exception as exc:  # the other phases' figures still count; this one says why it has none
                progress(f"{name}: failed: {type(exc).__name__}: {exc}")
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    results["cpus"] = {"allowed": sorted(ALL_CPUS), "gateway_alone_on": max(ALL_CPUS) if len(ALL_CPUS) > 1 else None,
                       "pinned_phases": ["latency", "load.alone_10", "stall"]}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer calls and shorter windows (about 3 minutes)")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of: {', '.join(PHASES)}")
    parser.add_argument("--json", type=Path, default=REPO / "bench-results" / "bench.json", help="where to write")
    args = parser.parse_args()
    names = [name.strip() for name in args.phases.split(",") if name.strip()]
    unknown = [name for name in names if name not in PHASES]
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(unknown)}; there are {', '.join(PHASES)}")
    plan = QUICK if args.quick else FULL
    began = time.monotonic()
    results = run_interruptible("bench", bench(plan, names, args.json.parent / "logs"))
    if results is None:
        return 130
    results |= {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "plan": asdict(plan),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": round(time.monotonic() - began, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "load_average": os.getloadavg(),
    }
    rows = report.rows_for(results, {name: rows_of for name, (_, rows_of) in PHASES.items()})
    report.print_table(rows)
    report.write_json(args.json, results, rows)
    print(f"\n{results['duration_s']:.0f} s; figures in {args.json}; what each side of a CPU ratio does: see "
          f"what_each_side_does there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
