"""Pretraining throughput: the data loader's ten-second clips per second per core, and training samples/s.

Loader (ours): `pretrain.data` on a one-CPU Ray cluster: Ray Data reads the Parquet shards,
decodes FLAC, crops 10.24 s, computes SSAST fbank features (1024 x 128) in batches and hands
torch batches to `iter_torch_batches`; clips per wall second on that one core, counted from the
stream's first batch (a training run streams for hours), and the seconds to that batch. The peer, in
the same run and process on one thread: a naive per-file loop (pyarrow row iteration,
soundfile decode, crop, `fbank` of one clip at a time). The inputs are 10 s 16 kHz mono
FLAC clips (band-limited noise bursts, seeded) in one catalog dataset.

SELD features: PSELDNets' 7-channel input of 5 s FOA clips (log-mel of W, Y, Z, X and the
intensity vectors on the same banks) in batches of 16 on one thread, against the same features
computed per clip with librosa's STFT and mel banks.

Masks: the host time of one SSAST pass's clustered masks for a batch of 64 (a GPU step draws
two while its kernels run).

Training: SSAST tiny and base forward + backward + AdamW step on ten-second inputs, in this
process (no Ray), on CUDA in bf16 when a GPU is present, else on the CPU; samples per second.
On a GPU also model FLOPs utilisation against the device's bf16 peak (H100/H200 SXM: 989
TFLOP/s dense); the FLOP count is 6 x parameters x tokens per encoder pass (two passes per
SSAST step) plus attention, computed from the model's config.

    python benchmarks/bench_pretrain.py [--quick] [--train-only] [--batch-base N] [--features-on device]

--train-only skips the loader: a GPU node needs only torch and pydantic for the training rows.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before numpy loads
    os.environ.setdefault(_var, "1")
os.environ.setdefault("ROOMTONE_RAY_DASHBOARD", "0")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

RATE, SECONDS, TARGET = 16_000, 10.0, 100.0
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def make_dataset(root: Path, clips: int, shards: int):
    """``clips`` seeded 10 s clips in ``shards`` Parquet shards, published as ``clips10s``."""
    import datasets

    from catalog import Catalog, CatalogConfig, audio_cell, encode_flac, write_shard

    features = datasets.Features({"id": datasets.Value("string"), "audio": datasets.Audio(sampling_rate=RATE),
                                  "duration": datasets.Value("float32"), "label": datasets.Value("string")})
    catalog = Catalog(CatalogConfig(root=str(root)))
    run = catalog.create_run("clips10s", {"clips": clips, "seed": 0}, features)
    n = int(RATE * SECONDS)
    for s in range(shards):
        rows = []
        for i in range(s, clips, shards):
            rng = np.random.default_rng(i)
            x = rng.standard_normal(n) * np.repeat(rng.random(int(SECONDS * 10)) ** 4, n // int(SECONDS * 10))
            x = np.convolve(x, np.hanning(rng.integers(3, 40)), "same")  # hanning(2) is all zeros
            x = 0.3 * x / np.abs(x).max()
            rows.append({"id": f"clip-{i:06d}", "audio": audio_cell(encode_flac(x, RATE), f"clip-{i}.flac"),
                         "duration": SECONDS, "label": f"c{i % 4}"})
        write_shard(run.shard("train", s, shards), features, rows)
    catalog.publish(run)
    return catalog


def loader_ours(catalog, batch: int, features_on: str = "loader") -> tuple[float, float, int]:
    """Sustained clips per second through the Ray Data stream on a one-CPU cluster, counted from
    its first batch (a training run streams for hours), the seconds to that first batch, and the
    clips read; after one warm-up stream (workers started, modules imported). With
    features_on="device" the stream stops at cropped waves (the ranks featurise)."""
    import ray

    from catalog.cluster import connect
    from pretrain.data import InputSpec, iter_batches, lanes_for_rank, open_source, plan_segments

    connect(num_cpus=1)
    try:
        src = open_source(catalog, "clips10s", "train", "ssast")
        spec = InputSpec("ssast", 10.24, RATE, 0, random_crop=True, features_on=features_on)
        warm = plan_segments(lanes_for_rank(src, 0, 1), 0, 0, 0, batch)
        for _ in iter_batches(warm, spec, batch_size=batch, data_cpus=1):
            pass
        segments = plan_segments(lanes_for_rank(src, 0, 1), 0, 0, 0, src.rows)
        start, rows, first = time.perf_counter(), 0, None
        for b in iter_batches(segments, spec, batch_size=batch, data_cpus=1):
            rows += len(b["id"])
            first = first or (time.perf_counter(), rows)
        return (rows - first[1]) / (time.perf_counter() - first[0]), first[0] - start, rows
    finally:
        ray.shutdown()


def loader_naive(catalog) -> float:
    """Clips per second of a per-file loop on one thread: pyarrow rows, soundfile, crop, fbank per clip."""
    from catalog import decode_audio
    from pretrain.features import PRESETS, fbank

    preset = PRESETS["ssast"]
    table = catalog.arrow_dataset("clips10s", "train").to_table(columns=["id", "audio"])
    start, rows = time.perf_counter(), 0
    for row in table.to_pylist():
        audio, rate = decode_audio(row["audio"]["bytes"])
        wave = np.zeros(int(10.24 * rate), np.float32)
        wave[: min(len(audio), len(wave))] = audio[: len(wave), 0]
        fbank(torch.from_numpy(wave)[None], rate, preset)
        rows += 1
    return rows / (time.perf_counter() - start)


def seld_rates(clips: int) -> tuple[float, float]:
    """5 s FOA clips per second on one thread, PSELDNets' 7-channel input (log-mels and intensity
    vectors on the same mel banks): ours in batches of 16, and a per-clip librosa peer."""
    import librosa

    from pretrain.features import normalize_seld, seld_features

    rate, n_fft, hop = 24_000, 1024, 240
    waves = np.random.default_rng(0).standard_normal((clips, 4, 5 * rate)).astype(np.float32) * 0.1
    batches = torch.from_numpy(waves).split(16)
    normalize_seld(seld_features(batches[0], rate))  # warm-up
    start = time.perf_counter()
    for b in batches:
        normalize_seld(seld_features(b, rate))
    ours = clips / (time.perf_counter() - start)
    banks = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=64, fmin=20, fmax=rate / 2, htk=True, norm="slaney")

    def peer(wave: np.ndarray) -> np.ndarray:
        spec = librosa.stft(wave, n_fft=n_fft, hop_length=hop, center=True, pad_mode="reflect")  # (4, bins, frames)
        logmel = 10 * np.log10(np.maximum(banks @ np.abs(spec) ** 2, 1e-10))
        intensity = np.real(np.conj(spec[:1]) * spec[1:])
        unit = intensity / (np.linalg.norm(intensity, axis=0, keepdims=True) + np.finfo(np.float32).eps)
        return np.concatenate([logmel, banks @ unit])

    peer(waves[0])  # warm-up: librosa's first call compiles and caches
    start = time.perf_counter()
    for wave in waves:
        peer(wave)
    return ours, clips / (time.perf_counter() - start)


def encoder_flops(model, frames: int) -> float:
    """Training FLOPs of one sample: 3 x (2 x params x tokens + attention) per encoder pass, two passes."""
    enc = model.config.encoder
    tokens = (enc.n_mels // enc.patch[0]) * (frames // enc.patch[1]) + 2
    params = sum(p.numel() for p in model.encoder.parameters())
    attention = 4 * enc.depth * tokens * tokens * enc.dim
    return 2 * 3 * (2 * params * tokens + attention)


def mask_ms(batch: int = 64, repeats: int = 20) -> float:
    """Host milliseconds of one SSAST pass's clustered masks for `batch` 10 s inputs (8 x 64
    patches, 400 masked): drawn on the CPU while a GPU has the step's kernels queued."""
    from pretrain.models.masking import cluster_mask

    gen = torch.Generator().manual_seed(0)
    cluster_mask(batch, (8, 64), 400, gen)
    start = time.perf_counter()
    for _ in range(repeats):
        cluster_mask(batch, (8, 64), 400, gen)
    return 1000 * (time.perf_counter() - start) / repeats


def train_rate(name: str, batch: int, steps: int, device: str, compile: bool = False,
               warmup: int = 1) -> tuple[float, float]:
    """Samples per second of full SSAST steps after `warmup` untimed ones (at least one to compile),
    and the FLOPs per sample."""
    from pretrain.models import create_model

    torch.manual_seed(0)
    model = create_model(name).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    forward = torch.compile(model) if compile else model
    x = {"fbank": torch.randn(batch, 1024, 128, device=device)}
    gen = torch.Generator().manual_seed(0)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu",
                                                                                                   enabled=False)

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = forward(x, generator=gen)["loss"]
        loss.float().backward()
        opt.step()

    for _ in range(max(warmup, int(compile))):  # kernels chosen, caches and (with compile) graphs built
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start), encoder_flops(model, 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small inputs and few steps (< 1 minute)")
    parser.add_argument("--train-only", action="store_true",
                        help="skip the loader (it needs the pipeline stack: Ray, the catalog); train rows only")
    parser.add_argument("--batch-base", type=int, help="ssast-base batch (default 4 on the CPU, 24 on CUDA)")
    parser.add_argument("--compile", action="store_true", help="also time each model under torch.compile")
    parser.add_argument("--features-on", choices=("loader", "device"), default="loader",
                        help="device: time the loader as features_on=device runs it (decode and crop only)")
    args = parser.parse_args()
    clips = 128 if args.quick else 1024
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)
    records = []
    if not args.train_only:
        with tempfile.TemporaryDirectory() as tmp:
            catalog = make_dataset(Path(tmp), clips, shards=2 if args.quick else 4)
            ours, first_s, rows = loader_ours(catalog, batch=8, features_on=args.features_on)
            naive = loader_naive(catalog) if args.features_on == "loader" else None
        if naive is None:
            print(f"loader, {rows} ten-second clips, decode and crop only (features_on=device): {ours:.1f} clips/s "
                  f"on one core from the first batch ({first_s:.2f} s to it)")
            records.append(rec("loader_crop_only_clips_per_s_per_core", ours, "10 s clips/s per core", None, None))
        else:
            print(f"loader, {rows} ten-second clips -> SSAST fbank (1024 x 128): ours {ours:.1f} clips/s on one core "
                  f"from the first batch ({first_s:.2f} s to it), naive per-file loop {naive:.1f} clips/s; "
                  f"target >= {TARGET:.0f}: {'MET' if ours >= TARGET else 'NOT met'}")
            records.append(rec("loader_clips_per_s_per_core", ours, "10 s clips/s per core", "naive per-file loop",
                               naive))
        records.append(rec("loader_first_batch_s", first_s, "s", None, None))
        ours, peer = seld_rates(16 if args.quick else 96)
        print(f"SELD input (7 x frames x 64) of 5 s FOA clips at 24 kHz: ours {ours:.1f} clips/s on one core, "
              f"librosa per clip {peer:.1f} clips/s")
        records.append(rec("seld_features_clips_per_s_per_core", ours, "5 s FOA clips/s per core", "librosa per clip",
                           peer))
    ms = mask_ms()
    print(f"SSAST clustered masks for a batch of 64 ten-second inputs: {ms:.1f} ms of host time a pass")
    records.append(rec("ssast_mask_ms_batch64", ms, "ms per pass", None, None))
    # --quick on a CPU: one untimed base step would double the run (about 20 s a sample on a slow core), so
    # base is timed on its first step, allocations included (a few % slower than a steady step)
    plan = {"ssast-tiny": (4, 2, 1), "ssast-base": (1, 1, 0)} if args.quick else {"ssast-tiny": (16, 10, 1),
                                                                                  "ssast-base": (4, 3, 1)}
    if device == "cuda":
        plan = {"ssast-tiny": (64, 10 if args.quick else 50, 3), "ssast-base": (24, 5 if args.quick else 30, 3)}
    if args.batch_base:
        plan["ssast-base"] = (args.batch_base, *plan["ssast-base"][1:])
    gpu = torch.cuda.get_device_name() if device == "cuda" else None
    peak = next((v for k, v in PEAK_BF16.items() if gpu and k in gpu), None)
    for name, (batch, steps, warmup) in plan.items():
        for compiled in (False, True) if args.compile else (False,):
            rate, flops = train_rate(name, batch, steps, device, compiled, warmup)
            suffix = "_compiled" if compiled else ""
            line = (f"train {name}{' (torch.compile)' if compiled else ''} on {gpu or 'one CPU thread'}: "
                    f"{rate:.2f} samples/s (batch {batch}, {steps} steps{'' if warmup else ', no warm-up step'})")
            records.append(rec(f"train_{name}{suffix}_samples_per_s_{device}", rate, "10 s samples/s", None, None))
            if peak:
                mfu = rate * flops / peak
                line += f", MFU {100 * mfu:.1f} % of {peak / 1e12:.0f} TFLOP/s bf16"
                records.append(rec(f"train_{name}{suffix}_mfu", 100 * mfu, "% of bf16 peak", None, None))
            print(line)
    print(json.dumps(records))


def rec(metric: str, value: float, unit: str, peer: str | None, peer_value: float | None) -> dict:
    return {"benchmark": "pretrain", "metric": metric, "value": round(value, 3), "unit": unit, "peer": peer,
            "peer_value": None if peer_value is None else round(peer_value, 3),
            "ratio": None if peer_value is None else round(value / peer_value, 3)}


if __name__ == "__main__":
    main()
