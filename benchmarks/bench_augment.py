"""Augmentation throughput: augmented 10 s, 4-channel, 24 kHz clips per second per core.

Ours = the offline job's path (`simulation.augment.apply_recipe` on float32 audio, the
function each Ray worker calls per row), metadata update included: an AudioGen-style mix of two scene clips
(float SNR, offset, gains resolved and recorded) and reverb with a 4-channel simulated RIR
(hybrid, RT60 0.6 s) aligned on its direct path. The peer is audiomentations on the SAME
clips in the same process: `ApplyImpulseResponse` with the same RIR (as a 4-channel WAV,
channel-wise convolution), and for mixing `AddBackgroundNoise` with the partner clip as
the "background" (the closest transform it has; it is mono-only, so a 4-channel mix is four
mono calls, one per partner channel, each reading its file as the library does). A mono
mix is measured too, where the peer needs one call, and our mono mix without its
metadata update (events, frame labels, caption), which the peer does not do. Last, the
offline job's whole row: ours decodes both FLAC parents, mixes and encodes FLAC; the peer
decodes the clip with soundfile, mixes (reading its partner's channels from FLAC files, the
stored format; it takes files only) and encodes the same way. Every timed call runs on one thread
after a warm-up call, cycling over the clips for at least 1 s (--quick) or 5 s of CPU time;
rates are clips over CPU seconds of this process.

    python benchmarks/bench_augment.py [--quick] [--clips N]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from catalog import decode_audio, encode_flac  # noqa: E402
from simulation import Room, foa, simulate  # noqa: E402
from simulation.augment import Context, Recipe, Resources, Reverb, Spec, apply_recipe, draw_recipe  # noqa: E402
from simulation.scenes import Box, LibraryItem, PlanConfig, caption, frame_labels, plan_scene  # noqa: E402

FS, SECONDS, CHANNELS = 24_000, 10.0, 4


def clips(n: int, channels: int) -> list[np.ndarray]:
    """Noise bursts with a decaying envelope, -20 dBFS-ish, float32 (channels, samples)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(SECONDS * FS)) / FS
    env = 0.3 + 0.7 * np.abs(np.sin(2 * np.pi * 0.4 * t))
    return [(0.1 * env * rng.standard_normal((channels, t.size))).astype(np.float32) for _ in range(n)]


def scene_meta(seed: int) -> dict:
    library = [LibraryItem(f"item-{i}", i, name, 2.0) for i, name in enumerate(["dog", "bell", "siren", "speech"])]
    plan = plan_scene(seed, library, (3.0, 3.0, 1.5), Box((0.5, 0.5, 0.5), (5.5, 5.5, 2.5)),
                      PlanConfig(duration=SECONDS, events_per_minute=60.0))
    return {"duration": SECONDS, "caption": caption(plan, Room((6.0, 6.0, 3.0), (0.8,) * 6)),
            "label": sorted({e.class_name for e in plan.events}), "labels": [l.to_dict() for l in frame_labels(plan)],
            "events": [{"event_id": e.item_id, "class_name": e.class_name, "class_index": e.class_index,
                        "track": e.track, "onset": e.onset, "offset": e.offset, "level_db": e.level_db,
                        "azimuth": e.azimuth, "elevation": e.elevation, "distance": e.distance, "speed": e.speed,
                        "moving": e.moving} for e in plan.events]}


def rir() -> np.ndarray:
    room = Room.from_rt60((7.0, 6.0, 3.0), 0.6, seed=1)
    return simulate(room, [[2.0, 2.5, 1.4]], foa((3.5, 3.0, 1.5)), fs=FS, duration=0.9, mode="hybrid")[0, 0].numpy()


def cpu_rate(fn, items: list, min_seconds: float) -> float:
    """Clips per CPU second, cycling over the items until at least `min_seconds` of CPU time."""
    fn(items[0])  # warm-up: imports, caches, first-call costs
    t0, done = time.process_time(), 0
    while done < len(items) or time.process_time() - t0 < min_seconds:
        fn(items[done % len(items)])
        done += 1
    return done / (time.process_time() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 clips per measurement (under a minute)")
    parser.add_argument("--clips", type=int, help="clips per measurement (default 16; --quick 4)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from audiomentations import AddBackgroundNoise, ApplyImpulseResponse

    n = args.clips or (4 if args.quick else 16)
    tmp = Path(tempfile.mkdtemp(prefix="bench-augment-"))
    multi, mono = clips(n + 1, CHANNELS), clips(n + 1, 1)
    metas = [scene_meta(i) for i in range(n + 1)]
    h = rir()
    sf.write(tmp / "rir.wav", h.T.astype(np.float32), FS, subtype="FLOAT")
    for i in range(n + 1):  # the peer reads its "background" from files
        for c in range(CHANNELS):
            sf.write(tmp / f"clip{i}_ch{c}.wav", multi[i][c], FS, subtype="FLOAT")
            (tmp / f"clip{i}_ch{c}.flac").write_bytes(encode_flac(multi[i][c], FS))  # as a shard stores it
        sf.write(tmp / f"mono{i}.wav", mono[i][0], FS, subtype="FLOAT")
    ids = [f"clip-{i}" for i in range(n + 1)]
    rng = np.random.default_rng(0)
    partners = [(i, int(SECONDS * FS)) for i in ids]
    mixes = [draw_recipe([Spec("mix")], rng, Context(ids[i], int(SECONDS * FS), FS, "foa", 0.1, partners),
                         seed=0, epoch=0) for i in range(n)]
    res4 = Resources(partners={k: torch.from_numpy(v) for k, v in zip(ids, multi)},
                     partner_meta=dict(zip(ids, metas)), rirs={"h": torch.from_numpy(h.astype(np.float32))})
    res1 = Resources(partners={k: torch.from_numpy(v) for k, v in zip(ids, mono)},
                     partner_meta=dict(zip(ids, metas)))
    index = {k: i for i, k in enumerate(ids)}

    def ours_mix(i, audio=multi, res=res4):
        return apply_recipe(mixes[i], audio[i], FS, metas[i], res)

    def ours_reverb(i):
        return apply_recipe(Recipe(ids[i], (ids[i],), 0, 0, (Reverb("h"),)), multi[i], FS, metas[i], res4)

    def ours_row(i):  # the whole per-row job path: decode both parents, mix, encode
        a, b = decode_audio(flac[i])[0].T, decode_audio(flac[index[mixes[i].steps[0].partner_id]])[0].T
        res = Resources(partners={mixes[i].steps[0].partner_id: torch.from_numpy(b)}, partner_meta=res4.partner_meta)
        out, _, _ = apply_recipe(mixes[i], a, FS, metas[i], res)
        return encode_flac(out.numpy().T, FS)

    def peer_mix(i, clip=None, ext="wav"):
        j = index[mixes[i].steps[0].partner_id]
        clip = multi[i] if clip is None else clip
        return np.stack([AddBackgroundNoise(tmp / f"clip{j}_ch{c}.{ext}", -5.0, 5.0, p=1.0)(clip[c], FS)
                         for c in range(CHANNELS)])

    def peer_row(i):  # the same job row with the peer: decode the clip, mix (reading FLAC partners), encode
        clip, _ = sf.read(io.BytesIO(flac[i]), dtype="float32", always_2d=True)
        return encode_flac(peer_mix(i, np.ascontiguousarray(clip.T), "flac").T, FS)

    def peer_mix_mono(i):
        j = index[mixes[i].steps[0].partner_id]
        return AddBackgroundNoise(tmp / f"mono{j}.wav", -5.0, 5.0, p=1.0)(mono[i][0], FS)

    peer_reverb = ApplyImpulseResponse(tmp / "rir.wav", p=1.0, leave_length_unchanged=True)
    flac = [encode_flac(x.T, FS) for x in multi]
    items, least = list(range(n)), 1.0 if args.quick else 5.0
    rates = {
        "mix_4ch": (cpu_rate(ours_mix, items, least), cpu_rate(peer_mix, items, least)),
        "mix_mono": (cpu_rate(lambda i: ours_mix(i, mono, res1), items, least), cpu_rate(peer_mix_mono, items, least)),
        "reverb_4ch": (cpu_rate(ours_reverb, items, least),
                       cpu_rate(lambda i: peer_reverb(multi[i], FS), items, least)),
    }
    audio_only = cpu_rate(lambda i: apply_recipe(mixes[i], mono[i], FS, None, res1), items, least)
    row_rate, peer_row_rate = cpu_rate(ours_row, items, least), cpu_rate(peer_row, items, least)
    print(f"augmented {SECONDS:.0f} s {FS // 1000} kHz clips per CPU second (one thread), {n} distinct clips:")
    names = {"mix_4ch": "mix, 4 channels (peer: AddBackgroundNoise per channel)",
             "mix_mono": "mix, mono (peer: AddBackgroundNoise)",
             "reverb_4ch": f"reverb, 4-ch RIR of {h.shape[-1] / FS:.1f} s (peer: ApplyImpulseResponse)"}
    for key, (ours, peer) in rates.items():
        print(f"  {names[key]:<62} ours {ours:7.2f}  audiomentations {peer:7.2f}  ({ours / peer:.2f}x)")
    print(f"  mix, mono, audio only (no label/caption update, as the peer) ours {audio_only:7.2f}  "
          f"({audio_only / rates['mix_mono'][1]:.2f}x)")
    print(f"  {'job row, 4 ch: decode FLAC parent(s), mix, encode FLAC':<62} ours {row_rate:7.2f}  "
          f"audiomentations {peer_row_rate:7.2f}  ({row_rate / peer_row_rate:.2f}x)")
    met = all(o >= p for o, p in rates.values())
    print(f"target: mixing and reverb at least as fast per clip as audiomentations: {'MET' if met else 'NOT met'}")

    def rec(metric: str, value: float, peer: str | None, peer_value: float | None) -> dict:
        return {"benchmark": "augment", "metric": metric, "value": round(value, 3), "unit": "clips/s per core",
                "peer": peer, "peer_value": None if peer_value is None else round(peer_value, 3),
                "ratio": None if peer_value is None else round(value / peer_value, 3)}

    print(json.dumps([
        rec("mix_4ch_10s_24k", *rates["mix_4ch"][:1], "audiomentations AddBackgroundNoise per channel",
            rates["mix_4ch"][1]),
        rec("mix_mono_10s_24k", rates["mix_mono"][0], "audiomentations AddBackgroundNoise", rates["mix_mono"][1]),
        rec("reverb_4ch_10s_24k", rates["reverb_4ch"][0], "audiomentations ApplyImpulseResponse",
            rates["reverb_4ch"][1]),
        rec("mix_mono_10s_24k_audio_only", audio_only, "audiomentations AddBackgroundNoise", rates["mix_mono"][1]),
        rec("job_row_mix_decode_encode", row_rate, "audiomentations AddBackgroundNoise per channel, sf decode",
            peer_row_rate),
    ]))


if __name__ == "__main__":
    main()
