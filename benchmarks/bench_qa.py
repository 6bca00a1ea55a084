"""QA tuple throughput per core: tuples per CPU second of the QA stage's worker path.

Ours = what a QA worker does per clip after reading its metadata: `extract_facts` (one
pass over the row: events, frame labels, room), every family's `generate`, and `to_rows`
(records with the typed answer), then `write_shard` to Parquet. Clips are 10 s FOA scene
rows (OpenAQA's clip length) made from real `plan_scene` plans with their `frame_labels`,
half the sources moving, 3 classes from a 6-class library, 36 events per minute.

Two peers, measured in the same run on the same clips:
- per-question rebuild: the SAME tuples (checked equal) made the way a per-question
  template script works, rebuilding the clip's facts from the row (events and a scan of
  the frame labels) for every question and running that question's family again; then
  the same records and Parquet. This is the end-to-end peer.
- answers only: each of the same questions answered by a linear scan of the frame labels
  for the fact it needs (the class's frames for times and directions, all frames for
  counts), with no phrasing, no choices and no records: a lower bound on any generator's
  cost per question, shown next to our generation step. It does less work than ours.

    python benchmarks/bench_qa.py [--quick] [--clips N]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before numpy loads
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
from random import Random  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from catalog import Location, shard_relpath, write_shard  # noqa: E402
from clock import Clock  # noqa: E402
from pipelines.qa import Context, extract_facts, features, generate, to_rows  # noqa: E402
from pipelines.qa.families import GENERATORS  # noqa: E402
from pipelines.stages.qa import _Scan  # noqa: E402
from simulation.scenes import Box, LibraryItem, PlanConfig, frame_labels, plan_scene  # noqa: E402
from simulation.seeding import item_seed  # noqa: E402

OPENAQA_TUPLES, TARGET = 5_681_708, 10_000.0
KINDS = ["Dog", "Bell", "Speech", "Knock", "Telephone", "Clapping"]


def scene_rows(n: int) -> list[dict]:
    """Scenes rows as the scenes stage writes them, without the audio."""
    library = [LibraryItem(f"{k.lower()}-{j}", i, k, d) for i, k in enumerate(KINDS)
               for j, d in enumerate((0.5, 1.0, 2.0))]
    rows = []
    for s in range(n):
        rng = np.random.default_rng(s)
        pool = [it for it in library if it.class_name in rng.choice(KINDS, 3, replace=False)]
        plan = plan_scene(s, pool, (4.0, 3.0, 1.5), Box((0.5, 0.5, 0.5), (7.5, 5.5, 2.5)),
                          PlanConfig(duration=10.0, events_per_minute=36.0))
        dims = [float(rng.uniform(4, 12)), float(rng.uniform(4, 10)), float(rng.uniform(2.5, 4))]
        rows.append({"id": f"scene-{s:07d}", "duration": 10.0, "format": "foa", "num_channels": 4,
                     "room_id": f"room-{s % 50:07d}", "room_dims": dims, "rt60": float(rng.uniform(0.2, 1.2)),
                     "array_center": [4.0, 3.0, 1.5], "noise_snr_db": plan.snr_db, "caption": "a caption",
                     "label": sorted({e.class_name for e in plan.events}),
                     "labels": [l.to_dict() for l in frame_labels(plan)],
                     "events": [{"event_id": e.item_id, "class_name": e.class_name, "class_index": e.class_index,
                                 "ontology_id": None, "track": e.track, "onset": e.onset, "offset": e.offset,
                                 "level_db": e.level_db, "azimuth": e.azimuth, "elevation": e.elevation,
                                 "distance": e.distance, "speed": e.speed, "moving": e.moving}
                                for e in plan.events]})
    return rows


def naive_answer(qa, row: dict) -> object:
    """One question answered from a fresh scan of the frame labels (no facts kept between questions)."""
    classes = [e["class_name"] for e in sorted(row["events"], key=lambda e: e["class_index"])]
    index = {e["class_name"]: e["class_index"] for e in row["events"]}
    name = qa.subjects[0].split()[-1] if qa.subjects else None
    frames = [l for l in row["labels"] if name is None or l["class_index"] == index.get(name)]  # the scan
    if qa.family == "counting":
        per_frame = Counter(l["frame"] for l in frames)
        return len({(l["class_index"], l["track"]) for l in frames}), max(per_frame.values(), default=0)
    if qa.family == "temporal" and frames:
        return min(l["frame"] for l in frames) * 0.1, (max(l["frame"] for l in frames) + 1) * 0.1
    if qa.family in ("direction", "distance", "motion") and frames:
        return frames[0]["azimuth"], frames[0]["elevation"], frames[0]["distance"], frames[-1]["azimuth"]
    return sorted(set(classes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 clips (seconds)")
    parser.add_argument("--clips", type=int, help="number of 10 s clips (default 2000; --quick 200)")
    args = parser.parse_args()
    n = args.clips or (200 if args.quick else 2000)
    rows = scene_rows(n)
    scan = _Scan()   # the job's scan before it generates (untimed): option ranges, weights and shares
    for r in rows:
        scan.count(extract_facts(r))
    base = Context(seed=0, class_map=tuple(KINDS))
    ctx = replace(base, **scan.context_fields(list(base.families), base)[1])
    generate(extract_facts(rows[0]), ctx)  # warm-up: imports, caches

    with Clock() as gen:
        tuples = [generate(extract_facts(r), ctx) for r in rows]
    with Clock() as rec:
        records = [rec_ for r, qas in zip(rows, tuples) for rec_ in to_rows(extract_facts(r), qas, seed=0,
                                                                             dataset="scenes@1")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-qa-"))
    with Clock() as write:
        shard_bytes = write_shard(Location.parse(str(tmp)).join(shard_relpath("train", 0, 1)), features(),
                                  records).bytes
    count = len(records)
    with Clock() as naive:
        for r, qas in zip(rows, tuples):
            for qa in qas:
                naive_answer(qa, r)
    with Clock() as rebuild:
        same = True
        for r, qas in zip(rows, tuples):
            for qa in qas:
                facts = extract_facts(r)
                again = GENERATORS[qa.family](facts, ctx, Random(item_seed(0, facts.audio_id, qa.family)))
                same &= any(q.question == qa.question and q.output == qa.output for q in again)
    rebuild_total = rebuild.cpu + rec.cpu + write.cpu

    ours_total = gen.cpu + rec.cpu + write.cpu
    rate, gen_rate, naive_rate = count / ours_total, count / gen.cpu, count / naive.cpu
    rebuild_rate = count / rebuild_total
    families = Counter(q.family for qas in tuples for q in qas)
    yes = [q.answer["boolean"] for qas in tuples for q in qas if q.form == "yesno"]
    print(f"{n} clips x 10 s FOA, {sum(len(r['events']) for r in rows)} events, "
          f"{sum(len(r['labels']) for r in rows)} frame labels; {count} tuples ({count / n:.1f} per clip), "
          f"yes share {np.mean(yes):.3f}")
    print(f"families: {dict(sorted(families.items()))}")
    print(f"{'step':50} {'CPU s':>8} {'tuples/s/core':>14}")
    for label, c in (("facts + families (extract_facts, generate)", gen.cpu), ("records (to_rows)", rec.cpu),
                     ("Parquet (write_shard)", write.cpu), ("ours, total", ours_total),
                     ("peer: per-question rebuild (same tuples), total", rebuild_total),
                     ("  of which rebuild + family, per question", rebuild.cpu),
                     ("peer: answers only (frame-label scan)", naive.cpu)):
        print(f"{label:50} {c:8.3f} {count / c:14,.0f}")
    print(f"per-question rebuild made the same tuples: {same}")
    minutes = OPENAQA_TUPLES / rate / 60
    print(f"OpenAQA-sized set ({OPENAQA_TUPLES:,} tuples): {minutes:.1f} core-minutes end to end "
          f"(target < 10: {'MET' if rate >= TARGET else 'NOT met'}); generation alone "
          f"{OPENAQA_TUPLES / gen_rate / 60:.1f} core-minutes")

    def out(metric: str, value: float, unit: str, peer: str | None, peer_value: float | None) -> dict:
        return {"benchmark": "qa", "metric": metric, "value": round(value, 3), "unit": unit, "peer": peer,
                "peer_value": None if peer_value is None else round(peer_value, 3),
                "ratio": None if peer_value is None else round(value / peer_value, 3)}

    print(json.dumps([
        out("tuples_per_second_per_core_end_to_end", rate, "tuples/s/core",
            "naive per-question fact rebuild, same tuples, same records", rebuild_rate),
        out("tuples_per_second_per_core_generation", gen_rate, "tuples/s/core",
            "answers only: per-question frame-label scan, no phrasing", naive_rate),
        out("openaqa_5.7M_core_minutes", minutes, "core-minutes", None, None),
        out("storage_bytes_per_tuple", shard_bytes / count, "bytes", None, None),
    ]))


if __name__ == "__main__":
    main()
