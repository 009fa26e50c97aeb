"""The benchmark's figures: pooling per-call windows, the targets of issue 4, the printed table and the JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gateway.stats import percentiles
from tests.bench.procs import OTHERS

Summary = dict[str, Any]  # a Window.summary(): count, p50, p95, p99


def pooled(values: Iterable[float]) -> Summary:
    """Exact percentiles of raw values (those the benchmark measures itself)."""
    data = list(values)
    return {"count": len(data), **percentiles(data)}


def across_calls(summaries: Sequence[Summary | None]) -> Summary:
    """Per-call window summaries combined: p50 is the median of the calls' p50s, p95 and p99 the worst call's.

    The gateway reports percentiles, not raw values. The pooled p95/p99 can be no higher than the worst
    call's, so these are upper bounds; calls are alike, so the median p50 stands for the pooled one.
    """
    usable = [s for s in summaries if s and s.get("count")]
    if not usable:
        return {"count": 0, "calls": 0, "p50": None, "p95": None, "p99": None}
    return {
        "count": sum(s["count"] for s in usable),
        "calls": len(usable),
        "p50": float(np.median([s["p50"] for s in usable])),
        "p95": max(s["p95"] for s in usable),
        "p99": max(s["p99"] for s in usable),
    }


@dataclass
class Row:
    figure: str
    value: str
    target: str = "info"
    verdict: str = ""  # PASS, MISS, or "" for figures without a target


def check(ok: bool | None) -> str:
    return "n/a" if ok is None else "PASS" if ok else "MISS"


def ms(summary: Summary, *keys: str) -> str:
    """'2.3 / 2.9 ms (n=1130)' for the given percentiles."""
    values = [summary.get(key) for key in keys]
    if any(v is None for v in values):
        return "no samples"
    return " / ".join(f"{v:.1f}" for v in values) + f" ms (n={summary['count']})"


QUIET_MS_PER_S = 100  # CPU of processes not ours (of 1000 per core) above which the figures are suspect


def rows_for(results: dict[str, Any], phase_rows: dict[str, Callable[[Any], list[Row]]]) -> list[Row]:
    """Every figure next to its target, phase by phase; those without a target are printed for information."""
    rows = [_machine_row(results), _speed_row(results)]
    for name, rows_of in phase_rows.items():
        if name in results and "error" in results[name]:
            rows.append(Row(f"{name}: no figures", results[name]["error"]))
        elif name in results:
            rows += rows_of(results[name])
    return rows


def latency_rows(lat: dict[str, Any]) -> list[Row]:
    return [*_uplink_rows(lat), *_downlink_rows(lat)]


def _uplink_rows(lat: dict[str, Any]) -> list[Row]:
    rows = []
    for codec, uplink in lat["uplink_by_codec"].items():
        total = uplink["uplink_latency_ms"]
        rows += [
            Row(f"uplink ({codec}): frame recv() -> 16 kHz chunk handed to the Live session, + filter delay, p50/p95",
                ms(uplink["handoff_latency_ms"], "p50", "p95")),
            Row(f"uplink ({codec}) added latency beyond the 20 ms chunk: recv() -> bytes sent to Live, p50/p95",
                ms(total, "p50", "p95"), "p50 <= 5 ms", check(None if total["p50"] is None else total["p50"] <= 5)),
        ]
    return rows


def _downlink_rows(lat: dict[str, Any]) -> list[Row]:
    start, prebuffer, cut = lat["start_latency_ms"], lat["prebuffer_ms"], lat["cut_latency_ms"]
    start_ok = None if start["p50"] is None else start["p50"] <= prebuffer["max"] + 5
    burst = lat["underruns"]
    return [
        Row("downlink: reply's first chunk in -> its first sample played, p50/p95 (burst)", ms(start, "p50", "p95"),
            f"p50 <= prebuffer + 5 = {prebuffer['max'] + 5:.0f} ms", check(start_ok)),
        Row("downlink: prebuffer after the run, worst call (burst)", f"{prebuffer['max']:.1f} ms", "<= 60 ms",
            check(prebuffer["max"] <= 60)),
        Row("downlink: per push, chunk in -> its first sample played (queueing ahead in burst), p50/p95",
            ms(lat["downlink_latency_ms"], "p50", "p95")),
        Row("barge-in cut: interrupted -> first frame carrying the fade, p50/p95", ms(cut, "p50", "p95"),
            "p95 <= 25 ms", check(None if cut["p95"] is None else cut["p95"] <= 25)),
        Row("barge-in end to end at the caller: speech starts -> received audio silent, p50/p95",
            ms(lat["barge_in_e2e_ms"], "p50", "p95"), "info (Pipecat: 262 ms)"),
        Row("  of which: speech starts -> `interrupted` event at the caller, p50/p95",
            ms(lat["interrupted_event_ms"], "p50", "p95")),
        Row("  aiortc receive path, RTP in -> decoded frame (caller; the gateway's uplink is alike), p50/p95",
            ms(lat["caller_receive_path_ms"], "p50", "p95")),
        Row("reply onset at the caller: utterance ends -> first reply sample heard, p50/p95",
            ms(lat["onset_ms"], "p50", "p95")),
        Row("underruns inside replies, burst (latency scenario)", _underruns(burst), "0",
            check(burst["underruns"] == 0)),
    ]


def stall_rows(stall: dict[str, Any]) -> list[Row]:
    return [
        Row("underruns inside replies, stall", _underruns(stall["underruns"])),
        Row("prebuffer after the stall run, worst call", f"{stall['prebuffer_ms']['max']:.1f} ms"),
    ]


def load_rows(load: dict[str, Any]) -> list[Row]:
    ten, shared = load["alone_10"], load["side_by_side"]["10"]
    jitter = ten["pacing_jitter_ms"]
    rows = [
        Row("underruns inside replies, burst, 10 concurrent calls", _underruns(ten["underruns"]), "0",
            check(ten["underruns"]["underruns"] == 0)),
        Row("pacing jitter, 10 concurrent calls (gateway on its own CPU), p50/p99", ms(jitter, "p50", "p99"),
            "p99 <= 5 ms", check(None if jitter["p99"] is None else jitter["p99"] <= 5)),
        Row("pacing jitter, 10 calls, no CPU of its own (+ 10 echo calls, 20 callers), p50/p99",
            ms(shared["pacing_jitter_ms"], "p50", "p99")),
        Row("gateway event loop ready but waiting for a CPU: 10 calls own CPU / shared (ms per s)",
            f"{ten['gateway_loop_waiting_for_cpu_ms_per_s']:.0f} / {shared['gateway_loop_waiting_for_cpu_ms_per_s']:.0f}"),
        Row("gateway CPU per call-second, 10 calls alone (own CPU)", f"{ten['cpu_ms_per_call_s']:.1f} ms",
            "info (Pipecat 147, bare aiortc 79 ms at 5 calls)"),
    ]
    for calls, figures in load["side_by_side"].items():
        rows += [
            Row(f"CPU per call-second, {calls} call(s) each, side by side: gateway / bare aiortc echo",
                f"{figures['gateway_cpu_ms_per_call_s']:.1f} / {figures['echo_cpu_ms_per_call_s']:.1f} ms",
                "info (Pipecat 226, bare aiortc 111 ms at 1 call)" if calls == "1" else "info"),
            Row(f"CPU ratio gateway / echo, {calls} call(s) (range over {figures['rounds']} rounds of calls)",
                f"{figures['ratio']:.2f} ({figures['round_ratio_min']:.2f}-{figures['round_ratio_max']:.2f})",
                "<= 1.20", check(figures["ratio"] <= 1.2)),
        ]
    return rows + _memory_rows(load["memory"])


def _memory_rows(mem: dict[str, Any]) -> list[Row]:
    return [
        Row("gateway memory per call (RSS with 10 calls - idle) / 10", f"{mem['per_call_mib']:.1f} MiB",
            "info (Pipecat ~12.5, bare aiortc ~1 MiB)"),
        Row("gateway RSS: idle after warm-up / 10 calls / after they ended / after 10 more",
            f"{mem['idle_mib']:.0f} / {mem['calls_10_mib']:.0f} / {mem['after_mib']:.0f} / "
            f"{mem['after_second_10_mib']:.0f} MiB"),
    ]


def resampler_rows(resampler: list[dict[str, Any]]) -> list[Row]:
    return [Row(f"resampler {row['conversion']}: stop band near / far (delay, CPU per 20 ms)",
                f"{_db(row['reject_near_db'])} / {_db(row['reject_far_db'])} dB "
                f"({row['delay_ms']} ms, {row['cpu_us']} us)") for row in resampler]


def _machine_row(results: dict[str, Any]) -> Row:
    """Whether something else loaded the machine while we measured (it skews CPU, pacing and latency)."""
    others = dict(_others(results, ""))
    if not others:
        return Row("other processes on the machine while measuring", "not measured")
    worst = max(others, key=others.__getitem__)
    return Row("other processes on the machine while measuring, worst phase (CPU ms per s)",
               f"{others[worst]:.0f} ({worst})", f"< {QUIET_MS_PER_S}: a quiet machine",
               "OK" if others[worst] < QUIET_MS_PER_S else "BUSY")


def _others(figures: Any, where: str) -> Iterable[tuple[str, float]]:
    """(where, CPU ms per s of processes not ours) for every CPU window in the figures."""
    if isinstance(figures, dict):
        if OTHERS in figures.get("cpu_ms_per_s", {}):
            yield where, figures["cpu_ms_per_s"][OTHERS]
        for key, value in figures.items():
            yield from _others(value, f"{where}.{key}".lstrip("."))


def _speed_row(results: dict[str, Any]) -> Row:
    speed = list(results["machine_speed_ms"].values())
    return Row("machine speed: CPU ms for a fixed piece of Python work, before each phase (min-max)",
               f"{min(speed):.0f}-{max(speed):.0f} ms", "info: lower is faster; compare runs by it")


def _underruns(figures: dict[str, Any]) -> str:
    return f"{figures['underruns']} ({figures['underrun_ms']:.0f} ms) in {figures['replies']} replies"


def _db(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


FOOTNOTE = ("Windows the gateway keeps per call (uplink, downlink, cut, pacing) are pooled over calls: p50 is the "
            "median of the calls' p50s, p95/p99 the worst call's (an upper bound of the pooled value).")


def print_table(rows: list[Row]) -> None:
    widths = [max(len(getattr(row, name)) for row in rows) for name in ("figure", "value", "verdict")]
    header = Row("figure", "value", "target", "")
    for row in [header, *rows]:
        print(f"{row.figure:<{widths[0]}}  {row.value:<{widths[1]}}  {row.verdict:<{widths[2]}}  {row.target}".rstrip())
    print(f"\n{FOOTNOTE}")


def write_json(path: Path, results: dict[str, Any], rows: list[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**results, "table": [asdict(row) for row in rows]}, indent=2) + "\n")
