"""Capacity plan of a dataset build, projected from the rates the benchmarks measure.

The model (infra/SCALING.md explains it and where it stops holding): every stage is
CPU-bound and parallel over shards, so a stage's wall time is its core-hours over the
workers that have a shard to write; storage is items x measured bytes per item; shards
follow the writer's size cap; the catalog grows by a manifest entry per file and a
metadata file per snapshot. Rates come from the benchmarks' closing JSON lines
(``--rates``), else from the figures measured on the reference machine (README table).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from catalog.errors import RoomtoneError
from catalog.fields import ShardBytes
from catalog.shards import DEFAULT_SHARD_BYTES, plan_num_shards

# benchmark/metric -> value, measured on the reference machine (2-core x86, one thread per worker).
REFERENCE_RATES: dict[str, float] = {
    "scenes/end_to_end_throughput": 431.0,  # audio hours per core-hour, 60 s FOA from a stored RIR grid
    "scenes/storage_bytes_per_audio_hour": 285e6,  # 4-ch 24 kHz 16-bit FLAC in Parquet, with labels
    "qa/tuples_per_second_per_core_end_to_end": 18_100.0,
    "qa/storage_bytes_per_tuple": 127.0,
    "rir/hybrid_throughput_rt1": 49.4,  # 4-capsule SRIRs per second per core, RT60 1.0 s
    # per GPU: one H200, 16 rooms x 72 sources a call (a grid RIR job's rooms), 1.5 s RIRs
    "rir/hybrid_batched_throughput_rt1_cuda": 694.0,
    # a new dataset's table: bytes per data file and per snapshot (its table's creation included)
    "shard_writer/catalog_bytes_per_file": 171.0,
    "shard_writer/catalog_bytes_per_snapshot": 21_606.0,
}
RIR_GPU_RATE = "rir/hybrid_batched_throughput_rt1_cuda"  # written by `bench_rir.py --device cuda`


class PlanRequest(BaseModel):
    """What to build: a PSELDNets-sized scene set and an OpenAQA-sized QA set by default."""

    model_config = ConfigDict(extra="forbid")

    hours: float = Field(1167.0, ge=0, le=1e7, allow_inf_nan=False, description="hours of scene audio")
    qa: int = Field(5_600_000, ge=0, le=10**11, description="question-answer tuples")
    workers: int = Field(64, ge=1, le=1_000_000, description="CPU cores working in parallel")
    gpus: int = Field(0, ge=0, le=100_000, description="GPUs for RIR simulation")
    rooms: int = Field(1000, ge=0, le=10**8, description="rooms of the RIR grid the scenes read")
    positions_per_room: int = Field(72, ge=1, le=100_000,
                                    description="grid points per room (default grid: 12 azimuths x 3 x 2)")
    rir_seconds: float = Field(1.65, gt=0, le=10, allow_inf_nan=False,
                               description="RIR length: 1.5 x the mean RT60 of U[0.2, 2.0] s")
    channels: int = Field(4, ge=1, le=256)
    sample_rate: int = Field(24_000, ge=8_000, le=192_000)
    max_shard_bytes: ShardBytes = DEFAULT_SHARD_BYTES


@dataclass(frozen=True)
class StagePlan:
    stage: str
    items: str
    core_hours: float
    workers: int
    storage_bytes: float
    shards: int
    rate: str

    @property
    def wall_hours(self) -> float:
        return self.core_hours / self.workers if self.workers else 0.0


@dataclass(frozen=True)
class Plan:
    request: PlanRequest
    stages: list[StagePlan]
    catalog_bytes: float
    notes: list[str]

    @property
    def wall_hours(self) -> float:
        return sum(s.wall_hours for s in self.stages)

    @property
    def core_hours(self) -> float:
        return sum(s.core_hours for s in self.stages)

    @property
    def storage_bytes(self) -> float:
        return sum(s.storage_bytes for s in self.stages)

    @property
    def shards(self) -> int:
        return sum(s.shards for s in self.stages)


def load_rates(paths: list[Path]) -> dict[str, float]:
    """Reference rates overlaid with the figures in benchmark outputs (any lines that are JSON records)."""
    rates = dict(REFERENCE_RATES)
    for path in paths:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise RoomtoneError(f"cannot read rates file {path}: {getattr(exc, 'strerror', None) or exc.reason}",
                                "pass the saved output of a benchmark, e.g. "
                                "`python benchmarks/bench_scenes.py --quick > rates.txt`") from None
        found = 0
        for line in lines:
            try:
                value = json.loads(line)
            except ValueError:
                continue  # benchmark prose around the JSON line
            for rec in value if isinstance(value, list) else [value]:
                if isinstance(rec, dict) and {"benchmark", "metric", "value"} <= rec.keys() \
                        and isinstance(rec["value"], (int, float)):
                    rates[f"{rec['benchmark']}/{rec['metric']}"] = float(rec["value"])
                    found += 1
        if not found:
            raise RoomtoneError(f"rates file {path} holds no benchmark figures",
                                "it should contain a benchmark's closing JSON line "
                                '({"benchmark": ..., "metric": ..., "value": ...})')
    return rates


def _stage(name: str, items: str, core_hours: float, storage: float, req: PlanRequest, rate: str,
           workers: int | None = None) -> StagePlan:
    shards = plan_num_shards(storage, req.max_shard_bytes) if storage else 0
    return StagePlan(name, items, core_hours, max(1, min(workers or req.workers, shards)) if shards else 0,
                     storage, shards, rate)


def make_plan(req: PlanRequest, rates: dict[str, float] | None = None) -> Plan:
    r = {**REFERENCE_RATES, **(rates or {})}
    notes = []
    n_rirs = req.rooms * req.positions_per_room
    rir_bytes = n_rirs * req.channels * req.rir_seconds * req.sample_rate * 4  # float32 lists
    gpu_rate = r[RIR_GPU_RATE] if req.gpus else None
    if gpu_rate:
        rir = _stage("rirs", f"{n_rirs:,} SRIRs ({req.rooms:,} rooms)", n_rirs / gpu_rate / 3600, rir_bytes, req,
                     f"{gpu_rate:,.0f} SRIR/s per GPU", workers=req.gpus)
    else:
        rate = r["rir/hybrid_throughput_rt1"]
        rir = _stage("rirs", f"{n_rirs:,} SRIRs ({req.rooms:,} rooms)", n_rirs / rate / 3600, rir_bytes, req,
                     f"{rate:,.1f} SRIR/s per core")
    scene_rate = r["scenes/end_to_end_throughput"]
    scenes = _stage("scenes", f"{req.hours:,.0f} h of audio", req.hours / scene_rate,
                    req.hours * r["scenes/storage_bytes_per_audio_hour"], req,
                    f"{scene_rate:,.0f} audio h per core-hour")
    qa_rate = r["qa/tuples_per_second_per_core_end_to_end"]
    qa = _stage("qa", f"{req.qa:,} tuples", req.qa / qa_rate / 3600, req.qa * r["qa/storage_bytes_per_tuple"], req,
                f"{qa_rate:,.0f} tuples/s per core")
    stages = [s for s in (rir, scenes, qa) if s.shards]
    for s in stages:
        if s.workers < (req.gpus if s.stage == "rirs" and gpu_rate else req.workers):
            notes.append(f"{s.stage}: only {s.shards} shards for {req.workers} workers; lower max_shard_bytes "
                         "to use them all")
    files = sum(s.shards for s in stages)
    catalog = files * r["shard_writer/catalog_bytes_per_file"] + len(stages) * r["shard_writer/catalog_bytes_per_snapshot"]
    return Plan(req, stages, catalog, notes)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def human_hours(h: float) -> str:
    if h < 1 / 60:
        return f"{h * 3600:.0f} s"
    if h < 1:
        return f"{h * 60:.0f} min"
    return f"{h:,.1f} h" if h < 48 else f"{h / 24:,.1f} days"


def describe_scale(plan: Plan) -> list[str]:
    """What to change before building ~10x or ~100x this much (infra/SCALING.md has the reasons)."""
    files = plan.shards
    out = []
    if files > 10_000:
        out.append(f"{files:,} shards: spread them over several prefixes (S3 scales request rates per prefix) "
                   "and raise max_shard_bytes towards 1-2 GB")
    if plan.request.workers > 256:
        out.append("more than 256 workers: give the Ray head node no workload (num-cpus 0) and 8+ cores")
    if files > 1_000:
        out.append("a catalog of this many files belongs on Postgres (ROOMTONE_CATALOG_URI), not SQLite")
    return out
