"""Scene throughput end to end: hours of 4-channel 24 kHz scene audio per core-hour.

Ours = the scenes stage's own path, `render_one` + `write_shard`: plan, RIRs simulated
for the planned positions (hybrid), batched convolution (static: one FFT convolution,
moving: frames batched through one FFT), diffuse ambience, FLAC, Parquet. The peer is a
naive renderer of the SAME plans with the SAME RIRs: per event and per channel
`scipy.signal.fftconvolve` for a static source, and for a moving one every 100 ms
(Hann cross-faded) segment convolved with its frame's RIR one at a time and added;
then the same ambience, FLAC encoding and Parquet writing. Only the rendering differs,
so the naive end-to-end cost is plan + RIR simulation (measured once, shared) + its own
render + FLAC + Parquet.

Inputs (a synthetic event library and a PSELDNets-ranged room set) are built in a temp
catalog with the real stages on a one-CPU Ray cluster, which is shut down before any
timing. Everything timed runs in this process on one thread; rates are audio seconds
over CPU seconds of this process (= hours of audio per core-hour = x real time per core).

    python benchmarks/bench_scenes.py [--quick] [--format foa|mic]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before numpy loads
    os.environ.setdefault(_var, "1")
os.environ.setdefault("ROOMTONE_RAY_DASHBOARD", "0")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402
from scipy.signal import fftconvolve  # noqa: E402

from catalog import Catalog, CatalogConfig, Location, audio_cell, encode_flac, shard_relpath, write_shard  # noqa: E402
from pipelines.stages import scenes as stage  # noqa: E402

PSELDNETS_HOURS, CORES, TARGET = 1167.0, 64, 400.0


class Clock:
    """CPU seconds (this process, all threads) and wall seconds of a block."""

    def __enter__(self) -> "Clock":
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.cpu, self.wall = time.process_time() - self.cpu0, time.perf_counter() - self.wall0


def build_inputs(root: Path, fmt: str, per_class: int, rooms: int) -> tuple[Catalog, float]:
    """An event library and a room set in a fresh catalog, made by the real stages on Ray."""
    import ray

    from catalog.cluster import connect
    from pipelines.stages.rirs import RirsConfig, run_rirs
    from pipelines.stages.synthetic_events import SyntheticEventsConfig, run_synthetic_events

    start = time.perf_counter()
    catalog = Catalog(CatalogConfig(root=str(root / "catalog")))
    connect(num_cpus=1)
    try:
        run_synthetic_events(SyntheticEventsConfig(name="events", per_class=per_class), catalog, show_progress=False)
        # PSELDNets room ranges; the stored RIRs are only for lineage here (scenes simulate their own), so short.
        run_rirs(RirsConfig(name="rirs", array=fmt, num_rooms=rooms, sources_per_room=1, rir_seconds=0.05,
                            test_fraction=0.0, device="cpu"), catalog, show_progress=False)
    finally:
        ray.shutdown()
    return catalog, time.perf_counter() - start


def scene_inputs(cfg, library, rooms, scene_id: str, split: str = "train"):
    """Room, array, plan of one scene exactly as `render_one` draws them."""
    from simulation.scenes import plan_scene, room_region

    draw = stage.draw_scene(cfg, library, rooms, scene_id, split)
    plan = plan_scene(draw.plan_seed, draw.items, draw.array.center, room_region(draw.room), draw.plan_config)
    return draw.record, draw.room, draw.array, plan


def scene_row(cfg, library, record, room, plan, audio: np.ndarray, flac: bytes, labels, caption: str,
              scene_id: str) -> dict:
    """The stage's row for one scene (same columns and values as `render_one`)."""
    return {
        "id": scene_id, "audio": audio_cell(flac, f"{scene_id}.flac"),
        "duration": audio.shape[1] / library.sample_rate, "format": cfg.format, "num_channels": audio.shape[0],
        "room_id": record["room_id"], "room_dims": list(room.dims), "rt60": record["rt60"],
        "array_center": list(record["array_center"]), "noise_snr_db": plan.snr_db, "caption": caption,
        "label": sorted({e.class_name for e in plan.events}), "labels": [l.to_dict() for l in labels],
        "events": [{"event_id": e.item_id, "class_name": e.class_name, "class_index": e.class_index,
                    "ontology_id": library.ontology.get(e.item_id), "track": e.track, "onset": e.onset,
                    "offset": e.offset, "level_db": e.level_db, "azimuth": e.azimuth, "elevation": e.elevation,
                    "distance": e.distance, "speed": e.speed, "moving": e.moving} for e in plan.events],
        "plan": json.dumps(plan.to_dict(), sort_keys=True), "seed": cfg.seed,
    }


def naive_render(plan, signals, rirs, fs: float, array, c: float, peak: float = 0.5) -> np.ndarray:
    """The same mix as `render_scene`, one fftconvolve per event, channel (and frame for a moving source)."""
    from simulation.scenes import diffuse_noise, event_signal

    n, hop, channels = int(round(plan.duration * fs)), int(round(plan.hop * fs)), len(array)
    window = np.sin(np.pi * np.arange(2 * hop) / (2 * hop)) ** 2
    mix = np.zeros((channels, n))
    for event, rir in zip(plan.events, rirs):
        x = event_signal(np.asarray(signals[event.item_id], dtype=np.float64), event, fs)
        start = int(round(event.onset * fs))
        if not event.moving:
            rir = rir[0] if rir.ndim == 3 else rir
            wet = np.stack([fftconvolve(x, rir[ch]) for ch in range(channels)])
        else:
            length = rir.shape[-1]
            frames = -(-len(x) // hop) + 1
            padded = np.zeros((frames + 1) * hop)
            padded[hop:hop + len(x)] = x
            acc = np.zeros((channels, (frames + 1) * hop + length))
            for f in range(frames):  # segment centred on frame f's RIR time, Hann cross-faded
                seg = padded[f * hop:f * hop + 2 * hop] * window
                for ch in range(channels):
                    acc[ch, f * hop:f * hop + 2 * hop + length - 1] += fftconvolve(seg, rir[f, ch])
            wet = acc[:, hop:hop + len(x) + length - 1]
        stop = min(n, start + wet.shape[1])
        mix[:, start:stop] += wet[:, :stop - start]
    if plan.snr_db is not None:
        noise = diffuse_noise(array, n, fs, np.random.default_rng(plan.noise_seed), c=c)
        target = float(np.mean(mix**2)) / 10.0 ** (plan.snr_db / 10.0)
        mix += noise * math.sqrt(target / max(float(np.mean(noise**2)), 1e-300))
    top = float(np.max(np.abs(mix)))
    return (mix * (peak / top if top > 0 else 1.0)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 scenes x 12 s (under a minute, inputs included)")
    parser.add_argument("--scenes", type=int, help="number of scenes (default 8; --quick 3)")
    parser.add_argument("--seconds", type=float, help="clip length in s (default 60; --quick 20)")
    parser.add_argument("--format", choices=["foa", "mic"], default="foa", help="4-channel FOA or tetrahedral MIC")
    args = parser.parse_args()
    n_scenes = args.scenes or (3 if args.quick else 8)
    seconds = args.seconds or (12.0 if args.quick else 60.0)
    torch.set_num_threads(1)

    from simulation.scenes import caption, frame_labels, render_scene, scene_rirs

    tmp = Path(tempfile.mkdtemp(prefix="bench-scenes-"))
    catalog, build_s = build_inputs(tmp, args.format, per_class=3 if args.quick else 8, rooms=4 if args.quick else 8)
    cfg = stage.ScenesConfig(format=args.format, num_scenes=n_scenes, clip_seconds=seconds)
    catalog_json = catalog.config.model_dump_json()
    with Clock() as load:  # once per worker in the stage: not part of the per-scene rate
        library = stage.load_library(catalog_json, "events", None, cfg.clip_seconds, cfg.max_event_seconds)
        rooms = stage.load_rooms(catalog_json, "rirs")
    feats = stage.features(cfg, library.sample_rate)
    fs = library.sample_rate
    ids = [f"scene-{i:07d}" for i in range(n_scenes)]
    shard = lambda name: Location.parse(str(tmp / name)).join(shard_relpath("train", 0, 1))  # noqa: E731

    # Warm-up (torch kernels, FFT plans, imports): one short scene, untimed.
    warm = cfg.model_copy(update={"clip_seconds": 2.0})
    write_shard(shard("warm"), stage.features(warm, fs), [stage.render_one(warm, library, rooms, "warm-up", "train")])

    # 1. Ours, the stage's path as it runs on a worker.
    with Clock() as ours:
        stats = write_shard(shard("ours"), feats, (stage.render_one(cfg, library, rooms, s, "train") for s in ids))
    audio_s = stats.audio_seconds

    # 2. Where the time goes: the same scenes step by step (same plan, same RIRs as render_one).
    parts = {k: 0.0 for k in ("plan", "rirs", "render", "convolution", "labels", "flac", "parquet")}
    naive = {k: 0.0 for k in ("render", "convolution", "flac", "parquet")}
    rows, naive_rows, events, moving, max_diff = [], [], 0, 0, 0.0
    for sid in ids:
        with Clock() as c:
            record, room, array, plan = scene_inputs(cfg, library, rooms, sid)
        parts["plan"] += c.cpu
        with Clock() as c:
            rirs = scene_rirs(plan, room, array, fs, rir_duration=cfg.rir_seconds, mode=cfg.mode)
        parts["rirs"] += c.cpu
        with Clock() as c:
            audio = render_scene(plan, library.signals, rirs, fs, array, c=room.c).audio
        parts["render"] += c.cpu
        with Clock() as c:  # the same render without ambience: convolution + mix alone
            render_scene(quiet := dataclasses.replace(plan, snr_db=None), library.signals, rirs, fs, array, c=room.c)
        parts["convolution"] += c.cpu
        with Clock() as c:
            labels, text = frame_labels(plan), caption(plan, room, None)
        parts["labels"] += c.cpu
        with Clock() as c:
            flac = encode_flac(audio.T, fs, cfg.bits)
        parts["flac"] += c.cpu
        rows.append(scene_row(cfg, library, record, room, plan, audio, flac, labels, text, sid))
        # 3. The naive peer on the same plan and RIRs.
        with Clock() as c:
            naive_audio = naive_render(plan, library.signals, rirs, fs, array, room.c)
        naive["render"] += c.cpu
        with Clock() as c:
            naive_render(quiet, library.signals, rirs, fs, array, room.c)
        naive["convolution"] += c.cpu
        with Clock() as c:
            naive_flac = encode_flac(naive_audio.T, fs, cfg.bits)
        naive["flac"] += c.cpu
        naive_rows.append(scene_row(cfg, library, record, room, plan, naive_audio, naive_flac, labels, text, sid))
        max_diff = max(max_diff, float(np.max(np.abs(naive_audio - audio))))
        events += len(plan.events)
        moving += sum(e.moving for e in plan.events)
    with Clock() as c:
        write_shard(shard("parts"), feats, rows)
    parts["parquet"] = c.cpu
    with Clock() as c:
        write_shard(shard("naive"), feats, naive_rows)
    naive["parquet"] = c.cpu
    stored = pq.read_table(shard("ours").path, columns=["audio"]).column("audio").to_pylist()
    same_bytes = all(s["bytes"] == r["audio"]["bytes"] for s, r in zip(stored, rows))

    shared = parts["plan"] + parts["rirs"] + parts["labels"]
    naive_total = shared + naive["render"] + naive["flac"] + naive["parquet"]
    parts_total = sum(v for k, v in parts.items() if k != "convolution")
    rate = lambda cpu: audio_s / cpu  # noqa: E731  x real time per core = hours of audio per core-hour
    ours_rate, naive_rate = rate(ours.cpu), rate(naive_total)
    ours_norir = rate(ours.cpu - parts["rirs"])
    naive_norir = rate(naive_total - parts["rirs"])
    render_rate, naive_render_rate = rate(parts["render"]), rate(naive["render"])
    conv_rate, naive_conv_rate = rate(parts["convolution"]), rate(naive["convolution"])
    project_h = PSELDNETS_HOURS / (ours_rate * CORES)

    print(f"{n_scenes} scenes x {seconds:g} s, {args.format} 4 ch, {fs} Hz, {cfg.bits}-bit FLAC: "
          f"{audio_s / 60:.1f} min of audio, {events} events ({moving} moving), RIRs {cfg.rir_seconds} s {cfg.mode}, "
          f"PSELDNets rooms; inputs built in {build_s:.1f} s (Ray, untimed), loaded in {load.wall:.2f} s (untimed)")
    print(f"torch threads {torch.get_num_threads()}; times are CPU seconds of this process "
          f"(end to end: {ours.cpu:.2f} s CPU, {ours.wall:.2f} s wall)")
    print()
    print(f"{'step':40} {'ours s':>8} {'share':>6} {'x RT/core':>10} | {'naive s':>8} {'x RT/core':>10}")
    steps = [("plan (seeded draws)", parts["plan"], parts["plan"]),
             ("RIR simulation (scene_rirs, hybrid)", parts["rirs"], parts["rirs"]),
             ("render: convolution + ambience + mix", parts["render"], naive["render"]),
             ("  of which convolution + mix", parts["convolution"], naive["convolution"]),
             ("  of which ambience (diffuse_noise)", parts["render"] - parts["convolution"],
              naive["render"] - naive["convolution"]),
             ("frame labels + caption", parts["labels"], parts["labels"]),
             ("FLAC encode", parts["flac"], naive["flac"]),
             ("Parquet write (write_shard)", parts["parquet"], naive["parquet"])]
    for name, t, tn in steps:
        t, tn = max(t, 1e-9), max(tn, 1e-9)
        print(f"{name:40} {t:8.2f} {100 * t / parts_total:5.1f}% {rate(t):10.0f} | {tn:8.2f} {rate(tn):10.0f}")
    print(f"{'sum of steps':40} {parts_total:8.2f} {100.0:5.1f}% {rate(parts_total):10.0f} | "
          f"{naive_total:8.2f} {naive_rate:10.0f}")
    print(f"{'render_one + write_shard (measured)':40} {ours.cpu:8.2f} {'':6} {ours_rate:10.0f} |")
    print()
    print(f"hours of scene audio per core-hour, end to end: ours {ours_rate:.0f}, naive fftconvolve {naive_rate:.0f} "
          f"({ours_rate / naive_rate:.2f}x)")
    print(f"  excluding RIR simulation:                     ours {ours_norir:.0f}, naive {naive_norir:.0f} "
          f"({ours_norir / naive_norir:.2f}x)")
    print(f"  render only (convolution + ambience + mix):   ours {render_rate:.0f}, naive {naive_render_rate:.0f} "
          f"({render_rate / naive_render_rate:.2f}x)")
    print(f"  convolution + mix only (no ambience):         ours {conv_rate:.0f}, naive {naive_conv_rate:.0f} "
          f"({conv_rate / naive_conv_rate:.2f}x)")
    print(f"target >= {TARGET:.0f} h/core-hour end to end: {'MET' if ours_rate >= TARGET else 'NOT met'} "
          f"({ours_rate:.0f}); faster than naive: {'yes' if ours_rate > naive_rate else 'no'}")
    print(f"projected wall time for a PSELDNets-sized set ({PSELDNETS_HOURS:,.0f} h) on {CORES} cores: "
          f"{project_h:.2f} h ({project_h * 60:.0f} min)")
    print(f"checks: naive vs ours max |diff| {max_diff:.2e} (float32 audio, peak 0.5); "
          f"step-by-step FLAC bytes identical to render_one's: {same_bytes}")

    def rec(metric: str, value: float, unit: str, peer: str | None, peer_value: float | None) -> dict:
        return {"benchmark": "scenes", "metric": metric, "value": round(value, 3), "unit": unit, "peer": peer,
                "peer_value": None if peer_value is None else round(peer_value, 3),
                "ratio": None if peer_value is None else round(value / peer_value, 3)}

    naive_name = "naive per-event scipy.signal.fftconvolve"
    print(json.dumps([
        rec("end_to_end_throughput", ours_rate, "audio hours per core-hour", naive_name, naive_rate),
        rec("throughput_excluding_rir_simulation", ours_norir, "audio hours per core-hour", naive_name, naive_norir),
        rec("render_only_throughput", render_rate, "audio hours per core-hour", naive_name, naive_render_rate),
        rec("convolution_only_throughput", conv_rate, "audio hours per core-hour", naive_name, naive_conv_rate),
        rec("pseldnets_1167h_wall_on_64_cores", project_h, "hours", None, None),
    ]))


if __name__ == "__main__":
    main()
