"""`roomtone plan`: the projection arithmetic, rates read from benchmark output, and the command."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from catalog import RoomtoneError
from catalog.shards import plan_num_shards
from pipelines.plan import REFERENCE_RATES, PlanRequest, load_rates, make_plan

ROOMTONE = str(Path(sys.executable).parent / "roomtone")


def test_scene_stage_follows_the_measured_rate_and_storage():
    plan = make_plan(PlanRequest(hours=1167, qa=0, rooms=0, workers=64))
    (scenes,) = plan.stages
    assert scenes.core_hours == pytest.approx(1167 / REFERENCE_RATES["scenes/end_to_end_throughput"])
    assert scenes.storage_bytes == pytest.approx(1167 * REFERENCE_RATES["scenes/storage_bytes_per_audio_hour"])
    assert scenes.shards == plan_num_shards(scenes.storage_bytes)
    assert scenes.wall_hours == pytest.approx(scenes.core_hours / 64)


def test_workers_beyond_the_shard_count_do_not_shorten_the_wall_time():
    few = make_plan(PlanRequest(hours=0, qa=1_000_000, rooms=0, workers=8))
    many = make_plan(PlanRequest(hours=0, qa=1_000_000, rooms=0, workers=800))
    (qa,) = many.stages
    assert qa.workers == qa.shards < 800
    assert many.wall_hours == pytest.approx(qa.core_hours / qa.shards)
    assert few.wall_hours >= many.wall_hours
    assert any("only" in n and "shards" in n for n in many.notes)


def test_gpus_simulate_the_rirs_at_the_measured_gpu_rate():
    cpu = make_plan(PlanRequest(hours=0, qa=0))
    (on_cores,) = cpu.stages
    assert "per core" in on_cores.rate and on_cores.workers > 4
    reference = make_plan(PlanRequest(hours=0, qa=0, gpus=4))  # the H200 figure of the README
    (rirs,) = reference.stages
    assert rirs.workers == 4 and rirs.rate == "694 SRIR/s per GPU"
    gpu = make_plan(PlanRequest(hours=0, qa=0, gpus=4), {"rir/hybrid_batched_throughput_rt1_cuda": 2000.0})
    (rirs,) = gpu.stages
    assert rirs.core_hours == pytest.approx(72_000 / 2000 / 3600)
    assert rirs.workers == 4


def test_rates_come_from_benchmark_output(tmp_path):
    out = tmp_path / "bench.txt"
    out.write_text("some table\n" + json.dumps([
        {"benchmark": "scenes", "metric": "end_to_end_throughput", "value": 400.0, "unit": "h", "peer": None},
        {"benchmark": "scenes", "metric": "worker_peak_rss", "value": 600, "unit": "MiB"}]) + "\n")
    rates = load_rates([out])
    assert rates["scenes/end_to_end_throughput"] == 400.0
    plan = make_plan(PlanRequest(hours=400, qa=0, rooms=0, workers=1), rates)
    assert math.isclose(plan.core_hours, 1.0)
    (tmp_path / "prose.txt").write_text("no figures here\n")
    with pytest.raises(RoomtoneError, match="holds no benchmark figures"):
        load_rates([tmp_path / "prose.txt"])
    with pytest.raises(RoomtoneError, match="cannot read rates file"):
        load_rates([tmp_path / "missing.txt"])


def test_the_command_prints_the_plan_and_refuses_bad_numbers():
    ok = subprocess.run([ROOMTONE, "plan", "--hours", "1167", "--qa", "5600000", "--workers", "64", "--json"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    plan = json.loads(ok.stdout)
    assert {s["stage"] for s in plan["stages"]} == {"rirs", "scenes", "qa"}
    assert plan["storage_bytes"] > 1e11 and plan["catalog_bytes"] > 0
    bad = subprocess.run([ROOMTONE, "plan", "--workers", "0"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "workers" in bad.stderr and "Traceback" not in bad.stderr
