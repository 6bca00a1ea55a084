"""Export a scenes dataset in the layout the DCASE SELD baselines read unchanged.

``<out>/{foa|mic}_dev/<split>/<id>.wav``, ``<out>/metadata_dev/<split>/<id>.csv`` (no header;
``frame,class,source,azimuth,elevation[,distance]``; 100 ms frames, integer degrees, distance
in integer cm as in DCASE2024) and ``<out>/class_map.json`` (index -> class name).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import soundfile as sf

from catalog import Catalog
from catalog.errors import RoomtoneError


def export_dcase(catalog: Catalog, ref: str, out: str | Path, *, with_distance: bool = True) -> dict:
    from simulation.scenes import FrameLabel, to_seld_labels
    from simulation.seld import write_dcase_csv

    snap = catalog.show(ref)
    info = snap.info
    if "labels" not in snap.features or "classes" not in info:
        raise RoomtoneError(f"{snap.ref} is not a scenes dataset (no labels or class map)",
                            "export a dataset made by `roomtone simulate scenes`")
    out = Path(out)
    audio_dir, meta_dir = out / f"{info['format']}_dev", out / "metadata_dev"
    counts: dict[str, int] = {}
    for split in catalog.splits(snap.ref):
        (audio_dir / split).mkdir(parents=True, exist_ok=True)
        (meta_dir / split).mkdir(parents=True, exist_ok=True)
        batches = catalog.arrow_dataset(snap.ref, split).to_batches(columns=["id", "audio", "labels", "duration"],
                                                                      batch_size=16)
        for row in (r for batch in batches for r in batch.to_pylist()):
            with sf.SoundFile(io.BytesIO(row["audio"]["bytes"])) as src:
                subtype = "PCM_24" if src.subtype == "PCM_24" else "PCM_16"
                sf.write(audio_dir / split / f"{row['id']}.wav", src.read(dtype="int32"), src.samplerate,
                         subtype=subtype)
            n_frames = int(round(row["duration"] / info.get("label_hop_s", 0.1)))
            labels = to_seld_labels([FrameLabel.from_dict(l) for l in row["labels"]], n_frames=n_frames)
            write_dcase_csv(labels, meta_dir / split / f"{row['id']}.csv", with_distance=with_distance)
            counts[split] = counts.get(split, 0) + 1
    (out / "class_map.json").write_text(json.dumps(dict(enumerate(info["classes"])), indent=2))
    return {"dataset": snap.ref, "out": str(out), "clips": counts, "classes": len(info["classes"])}
