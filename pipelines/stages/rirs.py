"""The SRIR dataset job: sample rooms, place arrays and sources, simulate on Ray, publish.

Room sampling follows the PSELDNets generator (SELD-Data-Generator): x, y ~ U[5, 25] m,
z ~ U[3, 10] m, RT60 ~ U[0.2, 2.0] s, 15-35 degC, the array centre at 40-60 % of each
dimension, sources at least 1 m from every wall, and rooms whose RT60 is unreachable are
drawn again. Every draw comes from (seed, room id), so rows do not depend on sharding.
One row per (room, source): the multichannel RIR plus geometry and acoustic labels.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Literal

import datasets
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from catalog import Catalog, Snapshot
from catalog.errors import RoomtoneError
from catalog.fields import DatasetName, Seed, ShardBytes
from catalog.shards import DEFAULT_SHARD_BYTES
from pipelines import metrics
from pipelines.sharded import ShardTask, holdout, plan_shards, require_gpus, run_sharded
from simulation.seeding import item_rng, item_seed

Range = tuple[float, float]
RT60_BINS = [round(0.2 * i, 1) for i in range(12)]          # 0.0 .. 2.2 s
VOLUME_BINS = [0, 50, 100, 250, 500, 1000, 2000, 4000, 7000]  # m^3; 25 x 25 x 10 m is 6250
MAX_DRAWS_PER_SOURCE = 1000  # random placement gives up (a clear error) instead of looping on a tiny feasible set


class RirsConfig(BaseModel):
    """Defaults are the PSELDNets ranges; the demo narrows them to stay small."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: DatasetName = "rirs"
    num_rooms: int = Field(16, ge=1, le=10_000_000)
    sources_per_room: int = Field(8, ge=1, le=10_000, description="random placement only")
    room_x: Range = (5.0, 25.0)
    room_y: Range = (5.0, 25.0)
    room_z: Range = (3.0, 10.0)
    rt60: Range = (0.2, 2.0)
    rt60_method: Literal["sabine", "eyring"] = "sabine"
    temperature: Range = (15.0, 35.0)
    array: Literal["mic", "foa", "circular", "linear"] = Field(
        "mic", description="custom geometries are for the Python API (simulation.custom)")
    array_channels: int = Field(8, ge=2, le=256, description="circular and linear arrays")
    array_radius: float = Field(0.05, gt=0, le=2.0, description="circular array radius, m")
    array_spacing: float = Field(0.04, gt=0, le=2.0, description="linear array spacing, m")
    array_center_fraction: Range = (0.4, 0.6)
    wall_clearance: float = Field(1.0, ge=0.05, le=10.0, description="sources keep this far from walls, m")
    min_source_distance: float = Field(0.5, gt=0, le=50.0, description="from the array centre, m")
    placement: Literal["random", "grid"] = "random"
    grid_azimuth_step: float = Field(30.0, gt=0, le=360.0)
    grid_elevations: list[float] = Field([-20.0, 0.0, 20.0], max_length=181, description="degrees, in [-90, 90]")
    grid_distances: list[float] = Field([1.0, 2.0], max_length=1000, description="m from the array centre, > 0")
    sample_rate: int = Field(24_000, ge=8_000, le=192_000)
    rir_seconds: float | None = Field(None, gt=0, le=4.0,
                                      description="default: 1.5 x the room's RT60 target (at most 3 s); "
                                                  "the stored T30 and EDT (500 Hz and 1 kHz octave "
                                                  "bands, averaged) are corrected for the cut")
    mode: Literal["hybrid", "ism"] = "hybrid"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: Seed = 0
    test_fraction: float = Field(0.25, ge=0, lt=1, description="rooms held out for the test split")
    max_shard_bytes: ShardBytes = DEFAULT_SHARD_BYTES

    @model_validator(mode="after")
    def _ranges(self) -> "RirsConfig":
        for field in ("room_x", "room_y", "room_z", "rt60", "temperature", "array_center_fraction"):
            lo, hi = getattr(self, field)
            if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
                raise ValueError(f"{field} must be a range [min, max] with 0 <= min <= max; got {[lo, hi]}")
        if min(self.room_x[0], self.room_y[0], self.room_z[0]) <= 2 * self.wall_clearance:
            raise ValueError(f"the smallest room dimension must exceed 2 x wall_clearance "
                             f"({2 * self.wall_clearance} m) so sources fit")
        if self.placement == "random" and (reach := self._worst_reach()) < self.min_source_distance:
            raise ValueError(f"min_source_distance={self.min_source_distance} m cannot be kept in the smallest rooms: "
                             f"with wall_clearance={self.wall_clearance} m, no point is more than {reach:.2f} m "
                             f"from the array; lower min_source_distance or wall_clearance, or raise the minimum "
                             f"of room_x/room_y/room_z")
        if self.rt60[0] <= 0 or self.rt60[1] > 3.0:
            raise ValueError(f"rt60 must lie in (0, 3] s; got {list(self.rt60)}")
        if not (0 < self.array_center_fraction[0] and self.array_center_fraction[1] < 1):
            raise ValueError("array_center_fraction must lie inside (0, 1)")
        if self.placement == "grid" and "sources_per_room" in self.model_fields_set:
            raise ValueError("sources_per_room counts random sources; grid placement puts one at every grid point "
                             "inside the room: drop sources_per_room (--sources-per-room), or use placement: random")
        if self.placement == "grid" and not (self.grid_distances and self.grid_elevations):
            raise ValueError("grid placement needs grid_distances and grid_elevations")
        if not all(-90 <= e <= 90 for e in self.grid_elevations):
            raise ValueError(f"grid_elevations must lie in [-90, 90] degrees; got {self.grid_elevations}")
        if not all(0 < d <= 50 for d in self.grid_distances):
            raise ValueError(f"grid_distances must lie in (0, 50] m; got {self.grid_distances}")
        return self

    def _worst_reach(self) -> float:
        """The distance from the array to the farthest allowed source point, in the room that makes it
        smallest: the smallest dimensions with the array as near their middle as array_center_fraction
        allows. Every room reaches at least this far, so random placement always finds positions."""
        fraction = max(self.array_center_fraction[0], min(0.5, self.array_center_fraction[1]))
        return math.dist((0, 0, 0), [max(fraction, 1 - fraction) * lo - self.wall_clearance
                                     for lo, _ in (self.room_x, self.room_y, self.room_z)])

    @property
    def channels(self) -> int:
        return {"mic": 4, "foa": 4}.get(self.array, self.array_channels)

    @property
    def max_sources(self) -> int:
        """Sources per room: sources_per_room, or every grid point (before the room drops some)."""
        if self.placement == "random":
            return self.sources_per_room
        return len(self.grid_distances) * len(self.grid_elevations) * math.ceil(360.0 / self.grid_azimuth_step)


def features(cfg: RirsConfig) -> datasets.Features:
    f32, vec = datasets.Value("float32"), datasets.Sequence(datasets.Value("float32"))
    return datasets.Features({
        "id": datasets.Value("string"), "room_id": datasets.Value("string"),
        "rir": datasets.Sequence(vec), "sample_rate": datasets.Value("int32"),
        "num_channels": datasets.Value("int32"), "num_samples": datasets.Value("int32"),
        "room_dims": vec, "volume": f32, "beta": vec, "rt60_target": f32, "rt60": f32, "edt": f32, "drr_db": f32,
        "temperature": f32, "speed_of_sound": f32,
        "array": datasets.Value("string"), "array_center": vec, "capsules": datasets.Sequence(vec),
        "source_position": vec, "azimuth": f32, "elevation": f32, "distance": f32,
        "mode": datasets.Value("string"), "seed": datasets.Value("int64"),
    })


def make_array(cfg: RirsConfig, center):
    from simulation import circular, foa, linear, tetra_mic

    if cfg.array == "mic":
        return tetra_mic(center)
    if cfg.array == "foa":
        return foa(center)
    if cfg.array == "circular":
        return circular(cfg.array_channels, cfg.array_radius, center)
    return linear(cfg.array_channels, cfg.array_spacing, center)


def sample_room(cfg: RirsConfig, room_id: str):
    """Room, array centre and source positions for one room id (deterministic)."""
    from simulation import Room

    rng = item_rng(cfg.seed, room_id)
    for _ in range(100):
        dims = [rng.uniform(*cfg.room_x), rng.uniform(*cfg.room_y), rng.uniform(*cfg.room_z)]
        rt60 = rng.uniform(*cfg.rt60)
        try:
            room = Room.from_rt60(dims, rt60, method=cfg.rt60_method, temperature=rng.uniform(*cfg.temperature),
                                  seed=item_seed(cfg.seed, room_id, "tail"))
            break
        except ValueError:
            continue  # unreachable RT60 for this room: draw again, as the PSELDNets generator does
    else:
        raise RoomtoneError(f"no room in room_x/room_y/room_z reaches an rt60 in {list(cfg.rt60)} after 100 draws",
                            "widen rt60, make the rooms smaller, or use rt60_method='eyring'")
    center = np.array([rng.uniform(*cfg.array_center_fraction) * d for d in dims])
    return room, rt60, center, _sources(cfg, rng, np.array(dims), center)


def _sources(cfg: RirsConfig, rng: np.random.Generator, dims: np.ndarray, center: np.ndarray) -> np.ndarray:
    lo, hi = np.full(3, cfg.wall_clearance), dims - cfg.wall_clearance
    if cfg.placement == "grid":
        pts = []
        for dist in cfg.grid_distances:
            for el in cfg.grid_elevations:
                for az in np.arange(-180.0, 180.0, cfg.grid_azimuth_step):
                    a, e = np.radians(az), np.radians(el)
                    pts.append(center + dist * np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)]))
        pts = np.array([p for p in pts if np.all(p >= lo) and np.all(p <= hi)])
        if not len(pts):
            raise RoomtoneError("no grid point lies inside the room with the wall clearance",
                                "shrink grid_distances or wall_clearance, or make the rooms larger")
        return pts
    out = []
    for _ in range(MAX_DRAWS_PER_SOURCE * cfg.sources_per_room):
        p = rng.uniform(lo, hi)
        if np.linalg.norm(p - center) >= cfg.min_source_distance:
            out.append(p)
            if len(out) == cfg.sources_per_room:
                return np.array(out)
    raise RoomtoneError(f"only {len(out)} of {cfg.sources_per_room} sources could be placed "
                        f"min_source_distance={cfg.min_source_distance} m from the array in a "
                        f"{' x '.join(f'{d:.2f}' for d in dims)} m room after "
                        f"{MAX_DRAWS_PER_SOURCE * cfg.sources_per_room} draws",
                        "lower min_source_distance or wall_clearance, or make the rooms larger")


def simulate_room(cfg: RirsConfig, room_id: str, device: str = "cpu") -> list[dict]:
    from simulation import direct_path_labels, direct_to_reverberant_ratio, mid_decay_times, simulate

    room, rt60_target, center, sources = sample_room(cfg, room_id)
    array = make_array(cfg, center)
    seconds = cfg.rir_seconds or min(3.0, max(0.1, 1.5 * rt60_target))
    rirs = simulate(room, sources, array, fs=cfg.sample_rate, duration=seconds, mode=cfg.mode,
                    device=device)[0].cpu().numpy().astype(np.float32)  # (S, M, N)
    az, el, dist = (v[:, 0] for v in direct_path_labels(sources, center[None]))
    t30, edt = (np.nanmean(v, axis=-1) for v in mid_decay_times(rirs, cfg.sample_rate, ("t30", "edt")).values())
    drr = np.nanmean(direct_to_reverberant_ratio(rirs, cfg.sample_rate), axis=-1)
    capsules = np.asarray(array.positions, dtype=np.float32).tolist()
    rows = []
    for s in range(len(sources)):
        rows.append({
            "id": f"{room_id}-src-{s:03d}", "room_id": room_id,
            "rir": list(rirs[s]),  # one float32 array per channel: pyarrow takes 1-D arrays only
            "sample_rate": cfg.sample_rate, "num_channels": rirs.shape[1], "num_samples": rirs.shape[2],
            "room_dims": list(room.dims), "volume": room.volume, "beta": list(room.beta),
            "rt60_target": rt60_target, "rt60": t30[s], "edt": edt[s], "drr_db": drr[s],
            "temperature": room.temperature, "speed_of_sound": room.c,
            "array": array.name, "array_center": center.tolist(), "capsules": capsules,
            "source_position": sources[s].tolist(), "azimuth": az[s], "elevation": el[s], "distance": dist[s],
            "mode": cfg.mode, "seed": cfg.seed,
        })
    return rows


def make_rows(cfg: RirsConfig, task: ShardTask):
    import torch

    device = "cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu"
    for room_id in task.items:
        rows = simulate_room(cfg, room_id, device)
        metrics.add("rirs", len(rows))
        yield from rows


def check_before_work(cfg: RirsConfig) -> None:
    """Sample the first room now, so an impossible config fails before any job starts."""
    room, _, center, sources = sample_room(cfg, "room-0000000")
    make_array(cfg, center)


def check_in_spec(cfg: RirsConfig, made: dict, catalog: Catalog) -> None:
    """A pipeline spec's pre-work check of an RIR stage (it reads no dataset)."""
    check_before_work(cfg)


def run_rirs(cfg: RirsConfig, catalog: Catalog, *, address: str | None = None,
             show_progress: bool = True) -> Snapshot:
    check_before_work(cfg)
    if cfg.device == "cuda":
        require_gpus(address)
    run = catalog.create_run(cfg.name, cfg, features(cfg))
    rooms = [f"room-{i:07d}" for i in range(cfg.num_rooms)]
    by_split = holdout(rooms, cfg.test_fraction)
    per_room = cfg.max_sources * cfg.channels * cfg.sample_rate * (cfg.rir_seconds or 0.75 * sum(cfg.rt60)) * 4
    # Row groups of about one room: scenes read a grid room by room, decoding only its row group(s).
    return run_sharded(catalog, run, plan_shards(by_split, cfg.max_shard_bytes, per_room), partial(make_rows, cfg),
                       address=address, show_progress=show_progress, use_gpus=cfg.device != "cpu",
                       description=f"simulating {cfg.name}",
                       writer_options={"row_group_bytes": int(max(1_000_000, per_room)),
                                       "histograms": {"rt60_target": RT60_BINS, "rt60": RT60_BINS,
                                                      "volume": VOLUME_BINS}})
