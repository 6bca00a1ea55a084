"""RIR throughput and accuracy: roomtone's torch engine against pyroomacoustics.

Same rooms for every engine: RT60 0.3 / 0.6 / 1.0 s (Sabine, pyroomacoustics'
`inverse_sabine`), 24 kHz, the 4-capsule MIC array, one source. The exact
image-source mode renders pyroomacoustics' image set (its max_order, its
length); the hybrid mode renders the same length with images up to the
transition and a diffuse tail after it. Then one batched call per RT60 (--batch
ROOMSxSOURCES rooms of the same ranges, each with its own array and sources, 1.5 x RT60
long, hybrid): the RIR job hands the engine a room with all its sources (72 for a grid
room) and the engine takes rooms one after another, so 16 x 72 times that call sixteen
times over. RIRs per second and peak memory, next to gpuRIR on the same rooms when it is
importable (CUDA only). Prints the tables, then one JSON line.

    python benchmarks/bench_rir.py --quick [--device cuda] [--batch 16x72]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from simulation import Room, decay_time, direct_to_reverberant_ratio, simulate, tetra_mic

FS = 24000
RT60S = (0.3, 0.6, 1.0)


def _peak_rss_mib(fn: Callable[[], object]) -> tuple[object, float]:
    """Run fn and return (result, peak resident memory in MiB during it, Linux VmHWM after a reset)."""
    status = Path("/proc/self/status")
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    result = fn()
    for line in status.read_text().splitlines() if status.exists() else []:
        if line.startswith("VmHWM:"):
            return result, int(line.split()[1]) / 1024.0
    return result, float("nan")


def _timed(fn: Callable[[], object], repeat: int, sync: bool) -> tuple[object, float]:
    best, out = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        if sync:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return out, best


def _pyroomacoustics(dims: np.ndarray, absorption: float, max_order: int, src: np.ndarray, mics: np.ndarray,
                     fdl: int) -> np.ndarray:
    """(4, n) RIRs in roomtone units: high-pass off, delay removed, divided by 4 pi."""
    import pyroomacoustics as pra

    pra.constants.set("rir_hpf_enable", False)
    pra.constants.set("frac_delay_length", fdl)
    room = pra.ShoeBox(list(dims), fs=FS, materials=pra.Material(absorption), max_order=max_order, air_absorption=False)
    room.add_source(list(src))
    room.add_microphone_array(mics.T)
    room.compute_rir()
    n = min(len(r[0]) for r in room.rir)
    return np.stack([r[0][fdl // 2 : n] for r in room.rir]) / (4 * math.pi)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.shape[-1], b.shape[-1])
    return float(np.linalg.norm(a[..., :n] - b[..., :n]) / np.linalg.norm(b[..., :n]))


def run(rooms_per_rt60: int, repeat: int, device: str, seed: int = 0) -> list[dict]:
    import pyroomacoustics as pra

    rng = np.random.default_rng(seed)
    sync = device.startswith("cuda")
    warm = Room(dims=(4.0, 3.0, 2.5), beta=(0.5,) * 6)
    for mode in ("ism", "hybrid"):
        simulate(warm, [[1.0, 1.0, 1.0]], tetra_mic((2.0, 1.5, 1.2)), fs=FS, nsample=4000, mode=mode, device=device)
    rows = []
    for rt60 in RT60S:
        for _ in range(rooms_per_rt60):
            dims = np.array([rng.uniform(5, 8), rng.uniform(4, 6), rng.uniform(2.7, 3.5)])
            absorption, max_order = pra.inverse_sabine(rt60, list(dims), c=343.0)
            room = Room.from_absorption(tuple(dims), absorption, temperature=(343.0 - 331.4) / 0.6)
            array = tetra_mic(dims * rng.uniform(0.4, 0.6, 3))
            src = rng.uniform(0.5, dims - 0.5)
            mics = np.asarray(array.positions)
            (peer, peer_s) = _timed(lambda: _pyroomacoustics(dims, absorption, max_order, src, mics, 81), 1, False)
            _, peer_mem = _peak_rss_mib(lambda: _pyroomacoustics(dims, absorption, max_order, src, mics, 81))
            n = peer.shape[-1]
            common = dict(fs=FS, nsample=n, device=device)
            ism, ism_s = _timed(lambda: simulate(room, [src], array, order=max_order, **common), repeat, sync)
            _, ism_mem = _peak_rss_mib(lambda: simulate(room, [src], array, order=max_order, **common))
            hyb, hyb_s = _timed(lambda: simulate(room, [src], array, mode="hybrid", **common), repeat, sync)
            _, hyb_mem = _peak_rss_mib(lambda: simulate(room, [src], array, mode="hybrid", **common))
            ours = ism[0, 0].double().cpu().numpy()
            long_kernel = _pyroomacoustics(dims, absorption, max_order, src, mics, 193)
            # Hybrid statistics against the exact image-source RIR of the same room and length.
            ref_len = dict(fs=FS, nsample=int(1.2 * rt60 * FS), device=device, dtype=torch.float64)
            exact = simulate(room, [src], array, **ref_len)[0, 0].cpu()
            approx = simulate(room, [src], array, mode="hybrid", **ref_len)[0, 0].cpu()
            dev = {m: np.abs(decay_time(approx, FS, m) / decay_time(exact, FS, m) - 1).max() for m in ("t30", "edt")}
            drr = np.abs(direct_to_reverberant_ratio(approx, FS) - direct_to_reverberant_ratio(exact, FS)).max()
            rows.append(dict(rt60=rt60, order=max_order, n=n, peer_s=peer_s, ism_s=ism_s, hyb_s=hyb_s,
                             peer_mem=peer_mem, ism_mem=ism_mem, hyb_mem=hyb_mem,
                             err81=_rel(ours, peer), err193=_rel(ours, long_kernel),
                             t30=dev["t30"], edt=dev["edt"], drr=drr))
    return rows


def batched(device: str, rooms: int, sources: int, repeat: int, seed: int = 1) -> list[dict]:
    """One `simulate` call over `rooms` x `sources` 4-capsule SRIRs per RT60 (hybrid, 1.5 x RT60 long):
    its rate after a warm-up call, best of `repeat`, and its peak memory (GPU memory on CUDA); gpuRIR's
    rate on the same rooms (its own diffuse model after the same transition) when it is importable."""
    from simulation.tail import default_transition

    rng = np.random.default_rng(seed)
    sync = device.startswith("cuda")
    peer = sync and importlib.util.find_spec("gpuRIR") is not None
    out = []
    for rt60 in RT60S:
        dims = [np.array([rng.uniform(5, 8), rng.uniform(4, 6), rng.uniform(2.7, 3.5)]) for _ in range(rooms)]
        room_list = [Room.from_rt60(tuple(d), rt60, seed=i) for i, d in enumerate(dims)]
        arrays = [tetra_mic(tuple(d * rng.uniform(0.4, 0.6, 3))) for d in dims]
        srcs = np.stack([rng.uniform(0.5, d - 0.5, (sources, 3)) for d in dims])
        # one transition for the whole call (the latest of the rooms' defaults), so gpuRIR switches to its
        # diffuse model where ours does
        split = max(default_transition(r, s, a, FS, 2 * round(0.004 * FS)) for r, s, a in zip(room_list, srcs, arrays))
        common = dict(fs=FS, nsample=int(1.5 * rt60 * FS), mode="hybrid", transition=split, device=device)
        call = lambda: simulate(room_list, srcs, arrays, **common)  # noqa: E731
        call()
        if sync:
            torch.cuda.reset_peak_memory_stats()
            _, best = _timed(call, repeat, sync)
            mem = torch.cuda.max_memory_allocated() / 2**20
        else:
            _, best = _timed(call, repeat, sync)
            _, mem = _peak_rss_mib(call)
        row = dict(rt60=rt60, rirs=rooms * sources, rate=rooms * sources / best, mem=mem, peer=None)
        if peer:
            gcall = lambda: simulate(room_list, srcs, arrays, backend="gpurir", **common)  # noqa: E731
            gcall()
            _, gbest = _timed(gcall, repeat, sync)
            row["peer"] = rooms * sources / gbest
        out.append(row)
    return out


def report_batched(rows: list[dict], device: str, rooms: int, sources: int) -> list[dict]:
    where = "GPU" if device.startswith("cuda") else "process"
    print(f"\nbatched: one call of {rooms} rooms x {sources} sources, 4-capsule MIC, hybrid, 1.5 x RT60 long, "
          f"on {device}")
    print(f"{'RT60':>5} {'SRIRs':>6} | {'ours SRIR/s':>11} {'gpuRIR SRIR/s':>13} {'x':>6} | "
          f"{'peak MiB (' + where + ')':>18}")
    records = []
    for r in rows:
        peer = f"{r['peer']:13.1f}" if r["peer"] else f"{'-':>13}"
        ratio = f"{r['rate'] / r['peer']:6.2f}" if r["peer"] else f"{'-':>6}"
        print(f"{r['rt60']:5.1f} {r['rirs']:6d} | {r['rate']:11.1f} {peer} {ratio} | {r['mem']:18.0f}")
        tag = f"rt{r['rt60']:g}" + ("" if device == "cpu" else f"_{device.split(':')[0]}")
        records.append({"benchmark": "rir", "metric": f"hybrid_batched_throughput_{tag}", "value": round(r["rate"], 3),
                        "unit": "SRIR/s", "peer": "gpuRIR" if r["peer"] else None,
                        "peer_value": round(r["peer"], 3) if r["peer"] else None,
                        "ratio": round(r["rate"] / r["peer"], 3) if r["peer"] else None})
        records.append({"benchmark": "rir", "metric": f"hybrid_batched_peak_memory_{tag}", "value": round(r["mem"], 1),
                        "unit": f"MiB ({where})", "peer": None, "peer_value": None, "ratio": None})
    return records


def report(rows: list[dict], device: str = "cpu") -> list[dict]:
    """Print the table; CUDA figures get a `_cuda` suffix (roomtone plan reads them as GPU rates)."""
    print(f"{'RT60':>5} {'rooms':>5} {'order':>5} {'len':>6} | {'pra SRIR/s':>10} {'ISM SRIR/s':>10} {'x':>6} "
          f"{'hyb SRIR/s':>10} {'x':>7} | {'RSS MiB pra/ism/hyb':>21} | {'err81':>8} {'err193':>8} | "
          f"{'dT30%':>6} {'dEDT%':>6} {'dDRR dB':>7}")
    records = []
    for rt60 in RT60S:
        sel = [r for r in rows if r["rt60"] == rt60]
        if not sel:
            continue
        rate = {k: len(sel) / sum(r[k] for r in sel) for k in ("peer_s", "ism_s", "hyb_s")}
        agg = {k: max(r[k] for r in sel) for k in ("peer_mem", "ism_mem", "hyb_mem", "err81", "err193", "t30", "edt", "drr")}
        print(f"{rt60:5.1f} {len(sel):5d} {sel[0]['order']:5d} {sel[0]['n']:6d} | {rate['peer_s']:10.2f} "
              f"{rate['ism_s']:10.2f} {rate['ism_s'] / rate['peer_s']:6.1f} {rate['hyb_s']:10.2f} "
              f"{rate['hyb_s'] / rate['peer_s']:7.1f} | {agg['peer_mem']:6.0f}/{agg['ism_mem']:6.0f}/{agg['hyb_mem']:6.0f} | "
              f"{agg['err81']:8.2e} {agg['err193']:8.2e} | {100 * agg['t30']:6.2f} {100 * agg['edt']:6.2f} {agg['drr']:7.3f}")
        tag = f"rt{rt60:g}" + ("" if device == "cpu" else f"_{device.split(':')[0]}")

        def rec(metric: str, value: float, unit: str, peer_value: float | None) -> None:
            ratio = value / peer_value if peer_value else None
            records.append({"benchmark": "rir", "metric": metric, "value": round(value, 6), "unit": unit,
                            "peer": "pyroomacoustics", "peer_value": None if peer_value is None else round(peer_value, 6),
                            "ratio": None if ratio is None else round(ratio, 3)})

        rec(f"ism_throughput_{tag}", rate["ism_s"], "SRIR/s", rate["peer_s"])
        rec(f"hybrid_throughput_{tag}", rate["hyb_s"], "SRIR/s", rate["peer_s"])
        rec(f"ism_peak_rss_{tag}", agg["ism_mem"], "MiB", agg["peer_mem"])
        rec(f"hybrid_peak_rss_{tag}", agg["hyb_mem"], "MiB", agg["peer_mem"])
        rec(f"ism_rel_l2_vs_peer_81taps_{tag}", agg["err81"], "ratio", None)
        rec(f"ism_rel_l2_vs_peer_193taps_{tag}", agg["err193"], "ratio", None)
        rec(f"hybrid_t30_deviation_{tag}", agg["t30"], "fraction", None)
        rec(f"hybrid_edt_deviation_{tag}", agg["edt"], "fraction", None)
        rec(f"hybrid_drr_deviation_{tag}", agg["drr"], "dB", None)
    print("SRIR = one source x 4 capsules; x = speed-up over pyroomacoustics (81-tap kernel, its default); "
          "err81/err193 = relative L2 of our exact ISM vs pyroomacoustics with 81/193 taps; "
          "dT30/dEDT/dDRR = hybrid vs our exact ISM (order -1, 1.2 x RT60 long); RSS = process peak during the call.")
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one room per RT60, single timing (under a minute)")
    parser.add_argument("--device", default="cpu", help="device of the torch engine: cpu or cuda")
    parser.add_argument("--rooms", type=int, default=3, help="rooms per RT60 without --quick")
    parser.add_argument("--batch", default=None, help="ROOMSxSOURCES of the batched call (default 16x72 on CUDA, a "
                                                       "grid RIR job's rooms; 4x2 on the CPU; --quick 2x2 on the CPU)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for both engines (1 = the per-worker figure of a parallel job)")
    args = parser.parse_args()
    import pyroomacoustics as pra

    torch.set_num_threads(args.threads)
    pra.constants.set("num_threads", args.threads)
    print(f"threads={args.threads} device={args.device} fs={FS}")
    rows = run(1 if args.quick else args.rooms, 1 if args.quick else 3, args.device)
    records = report(rows, args.device)
    batch = args.batch or ("16x72" if args.device.startswith("cuda") else "2x2" if args.quick else "4x2")
    rooms, sources = (int(v) for v in batch.lower().split("x"))
    records += report_batched(batched(args.device, rooms, sources, 1 if args.quick else 3), args.device, rooms, sources)
    print(json.dumps(records))


if __name__ == "__main__":
    main()
