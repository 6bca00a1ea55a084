"""Export a scenes dataset in the layout the DCASE SELD baselines read unchanged.

``<out>/{foa|mic}_dev/<split>/fold<N>_<id>.wav``, ``<out>/metadata_dev/<split>/fold<N>_<id>.csv``
(no header; ``frame,class,source,azimuth,elevation[,distance]``; 100 ms frames, integer degrees,
distance in integer cm as in DCASE2024) and ``<out>/class_map.json`` (index -> class name).
The baselines pick a clip's split from the digit after ``fold`` in its file name (STARSS23's
``fold3_room21_mix001``): train clips are fold 1 and test clips fold 4, the folds the DCASE2022
and 2023 baselines train and test on by default.

The baselines read every file in those folders. Each file is written under a hidden name and
renamed when whole (a killed export leaves no truncated clip). ``<out>/.roomtone-export.json``
lists what exports wrote there, so exporting another dataset into the same folder removes the
clips and labels of the earlier one, and a killed export's partial files, and nothing else: files
the user put there (real recordings in the same layout, say) are kept, and counted in the summary.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Callable

import soundfile as sf

from catalog import Catalog
from catalog.errors import RoomtoneError
from catalog.progress import progress_bar

DCASE_FOLDS = {"train": 1, "test": 4}
MANIFEST = ".roomtone-export.json"  # the files exports wrote: the only ones an export removes
_LAYOUT = ("foa_dev/*/*.wav", "mic_dev/*/*.wav", "metadata_dev/*/*.csv")
_PARTIAL = "*_dev/*/.*.partial"  # a killed export's files (see _write_whole)


def export_dcase(catalog: Catalog, ref: str, out: str | Path, *, with_distance: bool = True,
                 show_progress: bool = False) -> dict:
    from simulation.scenes import FrameLabel, to_seld_labels
    from simulation.seld import format_dcase_csv

    snap = catalog.show(ref)
    info = snap.info
    if "labels" not in snap.features or "classes" not in info:
        raise RoomtoneError(f"{snap.ref} is not a scenes dataset (no labels or class map)",
                            "export a dataset made by `roomtone simulate scenes`")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RoomtoneError(f"--out {out} is a file", "give a folder (made if missing)")
    splits = catalog.splits(snap.ref)
    for split in splits:
        dcase_fold(split)  # every split has a fold, before anything is written
    audio_dir, meta_dir = out / f"{info['format']}_dev", out / "metadata_dev"
    earlier = _read_manifest(out)
    planned = {f"{folder}/{split}/{dcase_stem(split, item)}.{ext}" for split in splits
               for item in catalog.arrow_dataset(snap.ref, split).to_table(columns=["id"])["id"].to_pylist()
               for folder, ext in ((audio_dir.name, "wav"), (meta_dir.name, "csv"))}
    _write_manifest(out, earlier | planned)  # first, so that a killed export's files are known as ours
    counts: dict[str, int] = {}
    with progress_bar("clips", show=show_progress) as progress:
        bar = progress.add_task(f"exporting {snap.version_ref}", total=snap.stats.get("rows"), note="")
        for split in splits:
            (audio_dir / split).mkdir(parents=True, exist_ok=True)
            (meta_dir / split).mkdir(parents=True, exist_ok=True)
            batches = catalog.arrow_dataset(snap.ref, split).to_batches(
                columns=["id", "audio", "labels", "duration"], batch_size=16)
            for row in (r for batch in batches for r in batch.to_pylist()):
                with sf.SoundFile(io.BytesIO(row["audio"]["bytes"])) as src:
                    subtype = "PCM_24" if src.subtype == "PCM_24" else "PCM_16"
                    pcm, rate = src.read(dtype="int32"), src.samplerate
                stem = dcase_stem(split, row["id"])
                wav = audio_dir / split / f"{stem}.wav"
                _write_whole(wav, lambda path: sf.write(path, pcm, rate, subtype=subtype, format="WAV"))
                n_frames = int(round(row["duration"] / info.get("label_hop_s", 0.1)))
                labels = to_seld_labels([FrameLabel.from_dict(l) for l in row["labels"]], n_frames=n_frames)
                csv = meta_dir / split / f"{stem}.csv"
                text = format_dcase_csv(labels, with_distance=with_distance)
                _write_whole(csv, lambda path: path.write_text(text, encoding="ascii"))
                counts[split] = counts.get(split, 0) + 1
                progress.advance(bar)
    stale = [out / rel for rel in sorted(earlier - planned) if (out / rel).exists()]
    stale += list(out.glob(_PARTIAL))
    for path in stale:
        path.unlink()
    _write_whole(out / "class_map.json",
                 lambda path: path.write_text(json.dumps(dict(enumerate(info["classes"])), indent=2)))
    _write_manifest(out, planned)
    foreign = sorted(p.relative_to(out).as_posix() for pattern in _LAYOUT for p in out.glob(pattern)
                     if p.relative_to(out).as_posix() not in planned)
    return {"dataset": snap.ref, "out": str(out), "clips": counts, "classes": len(info["classes"]),
            "folds": {split: dcase_fold(split) for split in splits}, "removed_stale": len(stale),
            "kept_foreign": foreign}


def _read_manifest(out: Path) -> set[str]:
    path = out / MANIFEST
    return set(json.loads(path.read_text())["files"]) if path.is_file() else set()


def _write_manifest(out: Path, files: set[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _write_whole(out / MANIFEST, lambda path: path.write_text(json.dumps({"files": sorted(files)}, indent=0)))


def dcase_fold(split: str) -> int:
    """The DCASE fold a split's clips are named for."""
    if split not in DCASE_FOLDS:
        raise RoomtoneError(f"split {split!r} has no DCASE fold (the export names {', '.join(DCASE_FOLDS)})",
                            "export a dataset whose splits are train and test, as the scenes stage writes")
    return DCASE_FOLDS[split]


def dcase_stem(split: str, item_id: str) -> str:
    """A clip's file name without extension in the export: ``fold<N>_<id>``."""
    return f"fold{dcase_fold(split)}_{item_id}"


def _write_whole(path: Path, write: Callable[[Path], object]) -> None:
    """write(partial) to a hidden name beside `path`, then rename it to `path`."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
