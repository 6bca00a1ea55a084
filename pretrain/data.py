"""Stream a catalog snapshot into training: Ray Data reads, decodes, crops and featurises.

The driver resolves the snapshot once (`open_source`): its split's Parquet files with row
counts, the columns a method needs (checked before anything starts) and a digest of the
file manifest for lineage. Each training rank then streams only its own *lanes* (whole
files, or row ranges of files when there are fewer files than ranks), so no worker reads
another's rows and nothing is materialised: a Ray Data pipeline of file segments ->
decode FLAC, crop and batched features (CPU tasks) -> `iter_torch_batches`.

The stream position is a row count, so a run resumed at step s starts exactly at row
s * rows-per-step; crop offsets derive from (seed, item id, epoch) and lane order from
(seed, rank, epoch), so batches never depend on timing or on which task ran where.
Training-time augmentation draws from the same keys: recipe steps (`simulation.augment`)
on each cropped wave, SELD frame labels updated from the recipe, then SpecAugment stripes
on its features. By default it runs in the same tasks; with features_on="device" the tasks
stop at cropped waves (and SELD targets, which need each row's labels) and each training
rank applies `model_inputs` to its batches on its own device.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator, Literal, Sequence

import numpy as np
import torch

from catalog import Location, decode_audio
from catalog.errors import RoomtoneError
from simulation.dsp import resample
from simulation.seeding import item_rng, item_seed

if TYPE_CHECKING:
    from catalog.catalog import Catalog

NEEDED_COLUMNS = {"ssast": ("audio",), "beats": ("audio",), "tagging": ("audio", "label"),
                  "seld": ("audio", "labels", "format")}
SELD_RATE = 24_000  # PSELDNets' FOA rate; seld_features' 10 ms hop assumes it
LABEL_HOP_S = 0.1
# Ray Data gathers a task's output into blocks up to this size before anyone can read them;
# its 128 MiB default holds ~250 fbank rows back, so the trainer would wait on whole segments
STREAM_BLOCK_BYTES = 8 << 20


@dataclass(frozen=True)
class Source:
    """One split of a pinned snapshot: what every rank needs to find its rows."""

    ref: str                                   # name@snapshot-id
    split: str
    files: tuple[tuple[str, int], ...]         # (uri, rows), sorted by uri
    digest: str                                # sha256 of the snapshot id and file manifest
    classes: tuple[str, ...]
    info: dict

    @property
    def rows(self) -> int:
        return sum(n for _, n in self.files)

    @property
    def name(self) -> str:
        return self.ref.split("@")[0]


def open_source(catalog: Catalog, ref: str, split: str, family: str, use: str = "training") -> Source:
    """Resolve ``ref`` and check it can feed ``family`` (ssast, beats, tagging, seld), before any work;
    ``use`` names what reads it in the messages (training, a probe, ...)."""
    snap = catalog.show(ref)  # NotFoundError names the known snapshots
    columns = set(snap.features)
    missing = [c for c in NEEDED_COLUMNS[family] if c not in columns]
    if missing:
        raise RoomtoneError(f"{snap.ref} has no column {', '.join(map(repr, missing))}, which {family} {use} needs"
                            f" (it has: {', '.join(sorted(columns))})",
                            "use an events dataset (audio, label) or a scenes dataset (audio, labels, format)")
    files = [f for f in catalog.files(snap.ref) if f.split == split and f.rows > 0]
    if not files:
        splits = sorted({f.split for f in catalog.files(snap.ref)})
        raise RoomtoneError(f"{snap.ref} has no rows in split {split!r}", f"splits: {', '.join(splits) or 'none'}")
    if family == "seld":
        formats = set(catalog.arrow_dataset(snap.ref, split).to_table(columns=["format"]).column(0).to_pylist())
        if formats != {"foa"}:
            raise RoomtoneError(f"{snap.ref} holds {sorted(map(str, formats))} audio (format), but SELD {use} reads "
                                "FOA: its features are log-mels plus FOA intensity vectors and its rotations are "
                                "FOA channel maps; MIC capsule signals would train on wrong directions",
                                "simulate the scenes with --format foa (roomtone simulate scenes)")
    classes = tuple(snap.info.get("classes") or sorted(snap.stats.get("class_counts", {})))
    if family in ("tagging", "seld") and not classes:
        raise RoomtoneError(f"{snap.ref} records no class map", "publish it with info.classes or class counts")
    manifest = {"snapshot": snap.ref, "files": [(f.uri, f.rows, f.bytes) for f in files]}
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    return Source(snap.ref, split, tuple((f.uri, f.rows) for f in files), digest, classes, snap.info)


@dataclass(frozen=True)
class InputSpec:
    """How one row becomes a model input: crop length, rate, features and target."""

    family: str
    clip_seconds: float
    sample_rate: int
    seed: int
    classes: tuple[str, ...] = ()
    random_crop: bool = True
    features: str | None = None  # fbank preset; default: beats for BEATs, else ssast
    augment: tuple[dict, ...] = ()  # recipe steps applied to each cropped wave (training only)
    spec_augment: bool = False  # SpecAugment stripes on each clip's features (training only)
    features_on: Literal["loader", "device"] = "loader"  # "device": the stream stops at cropped waves

    @property
    def samples(self) -> int:
        """Samples of one crop at ``rate``."""
        return int(round(self.clip_seconds * self.rate))

    @property
    def rate(self) -> int:
        return SELD_RATE if self.family == "seld" else self.sample_rate

    @property
    def frames(self) -> int:
        """Fbank frames of one crop (10 ms hop), the length models are built for."""
        return int(round(self.clip_seconds * 100))

    def preset(self):
        from pretrain.features import PRESETS

        name = self.features or ("beats" if self.family == "beats" else "ssast")
        return PRESETS[name].with_(target_frames=self.frames)


# -- which rows each rank reads ------------------------------------------------------------

Lane = tuple[str, int, int]  # (uri, first row, end row)


def lanes_for_rank(source: Source, rank: int, world: int) -> list[Lane]:
    """Whole files round-robin over ranks; with fewer files than ranks, each file in ``world`` row ranges."""
    if len(source.files) >= world:
        return [(uri, 0, n) for uri, n in source.files[rank::world]]
    lanes = [(uri, n * i // world, n * (i + 1) // world) for uri, n in source.files for i in range(world)]
    return [lane for lane in lanes[rank::world] if lane[2] > lane[1]]


def plan_segments(lanes: list[Lane], seed: int, rank: int, start_row: int, num_rows: int) -> list[dict]:
    """The rank's endless stream (epochs of its lanes in a seeded order), cut to rows [start, start + num)."""
    per_epoch = sum(b - a for _, a, b in lanes)
    if per_epoch == 0:
        raise RoomtoneError(f"rank {rank} has no rows to read", "use fewer workers than the dataset has rows")
    out, pos, end = [], start_row, start_row + num_rows
    while pos < end:
        epoch, within = divmod(pos, per_epoch)
        order = np.random.default_rng(item_seed(seed, "lanes", rank, epoch)).permutation(len(lanes))
        for i in order:
            uri, a, b = lanes[i]
            if within >= b - a:
                within -= b - a
                continue
            take = min(b - a - within, end - pos)
            out.append({"uri": uri, "epoch": int(epoch), "start": a + within, "stop": a + within + take})
            pos += take
            break
    return out


# -- Ray Data stages -----------------------------------------------------------------------

def crop_row(row: dict, spec: InputSpec, epoch: int) -> dict:
    """Decode one row, crop ``clip_seconds`` at a seeded offset, resample, and build its target."""
    audio, rate = decode_audio(row["audio"]["bytes"])
    audio = audio.T  # (channels, time)
    if spec.family == "seld" and audio.shape[0] != 4:
        raise RoomtoneError(f"row {row['id']} has {audio.shape[0]} channels; SELD training needs FOA (4)",
                            "train SELD on a scenes dataset made with --format foa")
    wave = audio if spec.family == "seld" else audio[:1]  # mono models read the omni / first channel
    hop = int(round(rate * LABEL_HOP_S))
    length = int(round(spec.clip_seconds * rate))
    room = max(0, wave.shape[1] - length)
    offset = 0
    if spec.random_crop and room:
        offset = int(np.random.default_rng(item_seed(spec.seed, row["id"], "crop", epoch)).integers(0, room + 1))
    if spec.family == "seld":
        offset -= offset % hop  # crops start on a label frame
    wave = resample(wave[:, offset:offset + length].astype(np.float32), rate, spec.rate)
    n = spec.samples
    heard = min(n, wave.shape[1])  # what the zero padding of a short clip leaves of it
    wave = np.pad(wave, ((0, 0), (0, max(0, n - wave.shape[1]))))[:, :n].astype(np.float32)
    out = {"wave": wave if spec.family == "seld" else wave[0], "id": row["id"]}
    if spec.family == "tagging":
        names = [row["label"]] if isinstance(row["label"], str) else list(row["label"] or [])
        target = np.zeros(len(spec.classes), np.float32)
        target[[spec.classes.index(c) for c in names if c in spec.classes]] = 1.0
        out["target"], out["sounding"] = target, heard
    elif spec.family == "seld":  # the crop's frame labels, renumbered from 0; targets come with the features
        first, frames = offset // hop, int(round(spec.clip_seconds / LABEL_HOP_S))
        out["labels"] = [dict(l, frame=l["frame"] - first) for l in row["labels"]
                         if first <= l["frame"] < first + frames]
    return out


def seld_targets(labels: list[dict], n_frames: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The ADPIT training target (frames, 6, 4, C) and the multi-ACCDOA reference (frames, 3, 3, C)
    of a crop's frame labels (frames counted from the crop's start)."""
    from simulation.seld import SeldLabels, adpit_target, multi_accdoa_target

    events = [(l["frame"], l["class_index"], l["track"], l["azimuth"], l["elevation"], l["distance"])
              for l in labels]
    labels = SeldLabels.from_events(events, n_frames=n_frames)
    return (adpit_target(labels, n_classes).astype(np.float32),
            multi_accdoa_target(labels, n_classes).astype(np.float32))


def _read_segments(batch: dict, spec: InputSpec, batch_size: int):
    """Ray Data UDF: file segments in, featurised clips out, `batch_size` rows at a time (a
    generator, so memory stays one batch). Decoding, cropping and features run in one UDF:
    the raw waves never become Ray blocks, which would copy them twice between operators."""
    import pyarrow.parquet as pq

    columns = ["id", *NEEDED_COLUMNS[spec.family]]
    columns = [c for c in columns if c != "format"]
    for uri, epoch, start, stop in zip(batch["uri"], batch["epoch"], batch["start"], batch["stop"]):
        loc = Location.parse(str(uri))
        with loc.filesystem.open_input_file(loc.path) as f:
            for part in row_groups(pq.ParquetFile(f), int(start), int(stop), columns):
                for chunk in part.to_batches(max_chunksize=batch_size):
                    rows = [crop_row(r, spec, int(epoch)) for r in chunk.to_pylist()]
                    yield _featurise({k: [r[k] for r in rows] if k in ("id", "labels") else
                                      np.stack([r[k] for r in rows]) for k in rows[0]}, spec, int(epoch))


def row_groups(parquet, start: int, stop: int, columns: list[str]):
    """Rows [start, stop) of an open ``pyarrow.parquet.ParquetFile``, one row group (about 100 MB)
    at a time: a shard can be gigabytes, and read whole it sat in the task's memory, and held
    back the stream's first batch, for as long as the task read it."""
    first = 0
    for i in range(parquet.num_row_groups):
        n = parquet.metadata.row_group(i).num_rows
        a, b = max(start, first), min(stop, first + n)
        if a < b:
            yield parquet.read_row_group(i, columns=columns).slice(a - first, b - a)
        first += n


def _featurise(batch: dict, spec: InputSpec, epoch: int) -> dict:
    """The loader's part of a batch of cropped rows (all from one segment, so one epoch): SELD
    targets, which need each row's labels, then the model inputs (features_on="loader"), or the
    waves and their epoch for the training rank to featurise ("device")."""
    ids = batch["id"]
    wave = np.ascontiguousarray(batch.pop("wave"))
    epochs = [epoch] * len(ids)
    labels, sounding = batch.pop("labels", None), batch.pop("sounding", None)
    if labels is not None:
        batch["target"], batch["reference"] = _seld_targets(labels, ids, epochs, spec)
    if sounding is not None and spec.augment:
        batch["target"] = _tagging_targets(batch["target"], sounding, ids, epochs, spec)
    if spec.features_on == "loader":
        batch["fbank"] = model_inputs(torch.from_numpy(wave), ids, epochs, spec).numpy()
    else:
        batch["wave"], batch["epoch"] = wave, np.array(epochs)
    batch["id"] = np.array(ids)
    return batch


def model_inputs(wave: torch.Tensor, ids: Sequence[str], epochs: Sequence[int], spec: InputSpec,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Cropped waves (B, T) mono or (B, 4, T) FOA -> recipe steps -> features (fbank, or the
    7-channel SELD input) -> SpecAugment, computed on ``device`` (default: the waves').

    The one featurising path: Ray Data tasks run it on CPU (features_on="loader"), training
    ranks on their own device ("device"). Every draw is keyed by (seed, item id, epoch) and
    made on the CPU, so an item comes out the same whichever device, rank, task or batch it
    lands in (up to float rounding across devices)."""
    from pretrain.features import fbank, normalize_seld, seld_features, spec_augment

    wave = wave.to(device, non_blocking=True) if device is not None else wave  # pinned by the collate on a GPU
    with torch.no_grad():
        if spec.augment:
            x = wave if wave.ndim == 3 else wave[:, None]
            x, _ = _augmenter(spec)(x, ids, _augment_rngs(ids, epochs, spec), epochs)
            wave = x if wave.ndim == 3 else x[:, 0]
        feats = normalize_seld(seld_features(wave, spec.rate)) if spec.family == "seld" else \
            fbank(wave, spec.rate, spec.preset())
        if spec.spec_augment:
            feats = torch.cat([spec_augment(f[None], torch.Generator().manual_seed(
                item_seed(spec.seed, i, "specaug", e))) for f, i, e in zip(feats, ids, epochs)])
    return feats


def _seld_targets(labels: list[list[dict]], ids: Sequence[str], epochs: Sequence[int],
                  spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """The crops' ADPIT targets and multi-ACCDOA references, after the recipes `model_inputs`
    applies to their audio: rotations turn the directions, shifts move the frames. The recipes
    are drawn again here from the same keys, without the audio: the on-the-fly steps resolve
    nothing from it (`pretrain.config.ON_THE_FLY`), so the drawn recipe is the applied one."""
    if spec.augment:
        from simulation.augment import apply_recipe_meta

        recipes = _augmenter(spec).draw(ids, _augment_rngs(ids, epochs, spec), spec.samples, epochs)
        labels = [apply_recipe_meta(r, {"duration": spec.clip_seconds, "labels": l}, spec.rate,
                                    hop=LABEL_HOP_S)["labels"] for r, l in zip(recipes, labels)]
    frames = int(round(spec.clip_seconds / LABEL_HOP_S))
    targets = [seld_targets(l, frames, len(spec.classes)) for l in labels]
    return np.stack([t[0] for t in targets]), np.stack([t[1] for t in targets])


def _tagging_targets(targets: np.ndarray, sounding: Sequence[int], ids: Sequence[str], epochs: Sequence[int],
                     spec: InputSpec) -> np.ndarray:
    """The crops' class targets after their recipes: each class sounds over the crop's first
    `sounding` samples (a short clip is zero-padded after them), and a shift or speed change
    that moves all of it out of the crop takes the class out of the target, which would
    otherwise name silence. Recipes are drawn again from the same keys, as for SELD."""
    from simulation.augment import apply_recipe_meta

    recipes = _augmenter(spec).draw(ids, _augment_rngs(ids, epochs, spec), spec.samples, epochs)
    out = np.zeros_like(targets)
    for row, (recipe, target, heard) in enumerate(zip(recipes, targets, sounding)):
        events = [{"class_name": k, "track": 0, "onset": 0.0, "offset": int(heard) / spec.rate}
                  for k in np.flatnonzero(target)]
        left = apply_recipe_meta(recipe, {"duration": spec.clip_seconds, "events": events}, spec.rate,
                                 hop=LABEL_HOP_S)["events"]
        kept = [e["class_name"] for e in left]
        out[row, kept] = target[kept]
    return out


def _augmenter(spec: InputSpec):
    """The batched recipe path (`BatchAugment`) for ``spec``'s steps, on (B, C, T) waves."""
    from simulation.augment import BatchAugment

    seld = spec.family == "seld"
    return BatchAugment(spec.augment, spec.rate, fmt="foa" if seld else None, hop=LABEL_HOP_S if seld else None,
                        seed=spec.seed)


def _augment_rngs(ids: Sequence[str], epochs: Sequence[int], spec: InputSpec) -> list[np.random.Generator]:
    return [item_rng(spec.seed, i, "augment", e) for i, e in zip(ids, epochs)]


def _collate_class():
    from ray.data.collate_fn import NumpyBatchCollateFn

    class Collate(NumpyBatchCollateFn):
        """numpy columns -> tensors; the ids stay a list (for messages such as a NaN batch).

        On a GPU worker the tensors are pinned here, in Ray's prefetch, so that the training
        loop's copy to the device runs beside the device's work; from pageable memory the
        copy waited for the previous step's kernels to drain. (Ray's own ``pin_memory`` takes
        only batches of tensors, and ours carries the ids.)"""

        pin = torch.cuda.is_available()

        def __call__(self, batch: dict) -> dict:
            out = {}
            for k, v in batch.items():
                t = list(v) if k == "id" else torch.from_numpy(np.require(v, requirements=["C", "W"]))
                out[k] = t.pin_memory() if self.pin and k != "id" else t
            return out

    return Collate


def stream(segments: list[dict], spec: InputSpec, *, batch_size: int, data_cpus: float = 1.0):
    """A lazy ``ray.data.Dataset`` of featurised rows in segment order (never materialised)."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # batches depend on the plan only, not on task timing
    ctx.enable_progress_bars = False  # one stream per rank and evaluation: bars would interleave
    ctx.print_on_execution_start = False
    # ...and no per-stream notices either (bars disabled; execution started/finished in N s)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    logging.getLogger("ray.data._internal.execution.streaming_executor").setLevel(logging.WARNING)
    ctx.target_max_block_size = STREAM_BLOCK_BYTES  # batches flow to the trainer as they are made
    ds = ray.data.from_items(segments, override_num_blocks=max(1, min(len(segments), 1000)))
    return ds.map_batches(_read_segments, fn_kwargs={"spec": spec, "batch_size": batch_size}, batch_size=1,
                          num_cpus=data_cpus)


def started(batches: Iterable) -> Iterator:
    """``batches`` with its first item fetched in a thread from now on, so a Ray Data stream's start
    (task processes, imports, the first reads: seconds) overlaps the caller's own set-up. Items,
    order and errors are the iterator's own."""
    it, end, first = iter(batches), object(), {}

    def fetch() -> None:
        try:
            first["item"] = next(it, end)
        except BaseException as exc:  # noqa: BLE001 - the stream's error, raised in the caller
            first["error"] = exc

    thread = threading.Thread(target=fetch, name="first-batch", daemon=True)
    thread.start()

    def chain() -> Iterator:
        thread.join()
        if "error" in first:
            raise first["error"]
        if first["item"] is not end:
            yield first["item"]
            yield from it

    return chain()


def iter_batches(segments: list[dict], spec: InputSpec, *, batch_size: int, data_cpus: float = 1.0):
    """Torch batches of ``batch_size`` rows ({"fbank", "id"[, "target"]}; with features_on="device"
    "wave" and "epoch" in place of "fbank"), in plan order."""
    ds = stream(segments, spec, batch_size=batch_size, data_cpus=data_cpus)
    return ds.iter_torch_batches(batch_size=batch_size, collate_fn=_collate_class()(), prefetch_batches=2)
