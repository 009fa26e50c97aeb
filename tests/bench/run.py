"""`make bench`: a real gateway, the Live API emulator and aiortc callers on 127.0.0.1, measured against issue 4.

    .venv/bin/python tests/bench/run.py [--quick] [--json PATH]      (default JSON: bench-results/bench.json)

Each server is its own process (so its CPU and memory are its own); the callers run here. In order:
1. resampler: stop-band rejection, delay and CPU of the gateway's converters (resampler_quality.py).
2. latency (burst emulator): rounds of concurrent Opus calls, then one of
   PCMU calls, each letting a whole reply play, then speaking over the next replies. Uplink (per codec),
   downlink start, barge-in cut (the gateway's windows), barge-in end to end (measured here, on the received
   audio), underruns. Within a call the downlink's 20 ms frame grid keeps one phase to the caller's, so cut
   latency barely varies inside a call: many calls with a few barge-ins each sample it properly.
3. load (burst emulator, plain `gateway serve`, and echo_server.py, a bare aiortc echo, as the baseline): a
   warm-up call; 1 call on each side by side (several calls in turn); 10 calls on the gateway alone (CPU,
   pacing jitter, underruns, memory); 10 calls on each side by side. Callers talk in utterance/silence
   cycles, the same audio on both sides. Side by side, because this VM's speed drifts by tens of percent
   between minutes.
4. stall (emulator restarted in stall mode, with a fresh gateway): whole replies; underruns and gaps.
5. phone (phone.py; alone with --phone): baresip phones through Janus and `gateway sip-bridge`, 1 and 5 calls:
   onset at the phone, CPU per phone call-second of the gateway and the bridge.
In phases 2, 3 (10 calls alone) and 4 the gateway has a CPU to itself and everything else (this process's
callers, the emulator) shares the others: on a 2-core machine the callers cost as much CPU as the gateway, and
would otherwise show up as its jitter. The side-by-side CPU windows are not pinned: both sides share alike.
It reports and never gates: the exit code is 0 whether or not targets are met.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: make `tests.bench` importable

from gateway.media.resample import StreamResampler  # noqa: E402
from gateway.rtc import restrict_host_addresses  # noqa: E402
from tests.bench import phases, phone, receive_path, report  # noqa: E402
from tests.bench.phases import Plan, progress  # noqa: E402
from tests.bench.procs import ALL_CPUS, REPO, Processes, own_cpu, run_interruptible  # noqa: E402
from tests.bench.resampler_quality import CONVERSIONS, GATEWAY, measure  # noqa: E402

SEED = 1
WHAT_EACH_SIDE_DOES = {
    "gateway": "per call: ICE/DTLS/SRTP, Opus decode + encode, 48k->16k and 24k->48k resampling, local VAD, "
               "journal, base64/JSON/TLS WebSocket to the emulator and back (google-genai SDK), playout buffer, "
               "paced 20 ms track, events data channel",
    "echo": "per call: ICE/DTLS/SRTP, Opus decode + encode of the caller's own frames sent straight back; "
            "no resampling, no Live API, no pacing or buffering, data channel opened but unused",
}
FULL = Plan(latency_rounds=6, latency_calls=4, whole_replies=1, barge_ins=2, settle_s=3.0, window_s=20.0,
            one_call_rounds=5, ten_call_rounds=2, stall_calls=3, stall_turns=3)
QUICK = Plan(latency_rounds=1, latency_calls=3, whole_replies=1, barge_ins=2, settle_s=2.5, window_s=6.0,
             one_call_rounds=2, ten_call_rounds=1, stall_calls=2, stall_turns=2)


def resampler_figures() -> list[dict[str, Any]]:
    return [measure(GATEWAY, StreamResampler, *conversion) for conversion in CONVERSIONS]


async def bench(plan: Plan, log_dir: Path) -> dict[str, Any]:
    restrict_host_addresses(["127.0.0.1"])
    receive_path.install()
    speed = [phases.machine_speed_ms()]
    progress("resampler figures")
    results: dict[str, Any] = {"resampler": resampler_figures()}
    async with Processes(log_dir) as procs:
        emulator = await procs.emulator("burst", SEED)
        gateway = await procs.gateway(emulator)
        speed.append(phases.machine_speed_ms())
        with own_cpu(gateway, [emulator]):
            results["latency"] = await phases.latency(gateway, plan, [emulator])
        await procs.stop(gateway)

        gateway = await procs.gateway(emulator)  # a fresh process: memory is measured from its idle size
        echo = await procs.echo()
        idle = await phases.warm_up(gateway)
        speed.append(phases.machine_speed_ms())
        one = await phases.side_by_side(gateway, echo, 1, plan.one_call_rounds, plan, [emulator])
        speed.append(phases.machine_speed_ms())
        with own_cpu(gateway, [echo, emulator]):
            ten = await phases.alone(gateway, 10, plan, [echo, emulator])
        await phases.wait_for_no_calls(gateway.url)
        after = gateway.rss_mib()
        speed.append(phases.machine_speed_ms())
        ten_side_by_side = await phases.side_by_side(gateway, echo, 10, plan.ten_call_rounds, plan, [emulator])
        await phases.wait_for_no_calls(gateway.url)
        after_again = gateway.rss_mib()
        for server in (echo, gateway, emulator):
            await procs.stop(server)
        results["memory"] = {"idle_mib": round(idle, 1), "calls_10_mib": ten["rss_mib"], "after_mib": round(after, 1),
                             "after_second_10_mib": round(after_again, 1), "per_call_mib": (ten["rss_mib"] - idle) / 10}
        results["load"] = {"alone_10": ten, "side_by_side": {"1": one, "10": ten_side_by_side},
                           "what_each_side_does": WHAT_EACH_SIDE_DOES}

        emulator = await procs.emulator("stall", SEED)
        gateway = await procs.gateway(emulator)
        speed.append(phases.machine_speed_ms())
        with own_cpu(gateway, [emulator]):
            results["stall"] = await phases.stall(gateway, plan, [emulator])
        await procs.stop(gateway)
        await procs.stop(emulator)
        speed.append(phases.machine_speed_ms())
        results["phone"] = await phone.phone_phase(procs, log_dir / "phone")
    results["machine_speed_ms"] = speed
    results["cpus"] = {"allowed": sorted(ALL_CPUS), "gateway_alone_on": max(ALL_CPUS) if len(ALL_CPUS) > 1 else None,
                       "pinned_phases": ["latency", "load.alone_10", "stall"]}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer calls and shorter windows (about a minute)")
    parser.add_argument("--phone", action="store_true", help="only the phone phase (phone.py), about a minute")
    parser.add_argument("--json", type=Path, default=REPO / "bench-results" / "bench.json", help="where to write")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    began = time.monotonic()
    work = phone.alone(args.json.parent / "logs") if args.phone else bench(plan, args.json.parent / "logs")
    results = run_interruptible("bench", work)
    if results is None:
        return 130
    results |= {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "plan": asdict(plan),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": round(time.monotonic() - began, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    rows = phone.rows(results.get("phone")) if args.phone else report.rows_for(results) + phone.rows(results["phone"])
    report.print_table(rows)
    report.write_json(args.json, results, rows)
    print(f"\n{results['duration_s']:.0f} s; figures in {args.json}; what each side of the CPU ratio does: see "
          f"load.what_each_side_does there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
