"""QA records: the Parquet row schema (with a typed answer for automatic scoring) and the
LTU and SpatialSoundQA exports made from it.

Every Parquet row carries ``convention`` (coordinate frame and units) and the answer's
``unit``; every question about a direction, distance, speed or motion also states the frame
in its text, so the LTU and SpatialSoundQA records, whose keys are fixed by those formats,
are self-describing too (the export writes convention.json beside them as well).
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from random import Random
from typing import Iterable

import datasets

from catalog.errors import RoomtoneError
from pipelines.export_dcase import dcase_fold
from pipelines.qa.facts import CONVENTION, Facts
from pipelines.qa.families import QA
from simulation.seeding import item_seed

CLOSED_PREFIX = "Closed-ended question: "   # LTU's training spelling, on a seeded half of closed questions
LTU_KEYS = ("instruction", "input", "audio_id", "dataset", "task", "output")
SPATIAL_KEYS = ("audio_id", "reverb_id", "audio_id2", "reverb_id2", "question_id", "question_type", "question",
                "answer")


def features() -> datasets.Features:
    string, f64 = datasets.Value("string"), datasets.Value("float64")
    answer = {"kind": string, "text": string, "values": datasets.Sequence(f64), "unit": string,
              "labels": datasets.Sequence(string), "choices": datasets.Sequence(string),
              "choice_index": datasets.Value("int32"), "boolean": datasets.Value("bool")}
    return datasets.Features({
        "id": string, "audio_id": string, "audio_split": string, "dataset": string, "family": string,
        "task": string, "form": string, "closed": datasets.Value("bool"), "instruction": string, "input": string,
        "question": string, "output": string, "answer": answer, "question_type": string,
        "subjects": datasets.Sequence(string), "generator": string, "convention": string, "room_id": string,
        "parents": datasets.Sequence(string), "room_ids": datasets.Sequence(string),
        "clips": datasets.Sequence(string),
    })


def to_rows(facts: Facts, qas: list[QA], *, seed: int, dataset: str, audio_split: str = "train") -> list[dict]:
    """One row per tuple; the closed-ended prefix goes on a half drawn from (seed, audio id).
    audio_split: the source split that holds the audio (where an export of the source puts it)."""
    rng = Random(item_seed(seed, facts.audio_id, "prefix"))
    draws = [rng.random() for _ in qas]
    clips = sorted(facts.clips)
    return [{"id": f"{facts.audio_id}/{i:03d}", "audio_id": facts.audio_id, "audio_split": audio_split,
             "dataset": dataset, "family": q.family,
             "task": q.task, "form": q.form, "closed": q.closed,
             "instruction": (CLOSED_PREFIX + q.question) if q.closed and draws[i] < 0.5 else q.question,
             "input": "", "question": q.question, "output": q.output, "answer": q.answer,
             "question_type": q.question_type, "subjects": q.subjects, "generator": q.generator,
             "convention": CONVENTION, "room_id": facts.room_id, "parents": list(facts.parents),
             "room_ids": list(facts.room_ids), "clips": clips} for i, q in enumerate(qas)]


def ltu_record(row: dict, audio_path: str = "{audio_id}") -> dict:
    """LTU's six keys, exactly; ``audio_path`` formats ``audio_id``, ``split`` (the source split
    holding the audio) and ``fold`` (that split's DCASE fold) into a file path, such as where
    ``roomtone export dcase`` puts the clip."""
    split = row["audio_split"]
    fold = dcase_fold(split) if "{fold" in audio_path else None
    return {"instruction": row["instruction"], "input": row["input"],
            "audio_id": audio_path.format(audio_id=row["audio_id"], split=split, fold=fold),
            "dataset": row["dataset"], "task": row["task"], "output": row["output"]}


def spatial_record(row: dict) -> dict:
    """SpatialSoundQA's keys: the room stands in for the reverb id (our scenes are simulated
    in rooms, not convolved with a stored binaural RIR). ``audio_id2`` and ``reverb_id2`` are
    always null: SpatialSoundQA's loader mixes that second clip into ``audio_id`` as it reads,
    and our ``audio_id`` is the clip as heard, a mixture already mixed (naming a parent there
    would play it twice). A mixture of two rooms has no reverb id (its ``room_id`` is its first
    parent's, provenance only). The Parquet rows keep a mixture's ``parents`` and ``room_ids``."""
    one_room = len(set(row.get("room_ids") or [])) <= 1   # a two-room mixture has no one reverb
    return {"audio_id": row["audio_id"], "reverb_id": row["room_id"] if one_room else None, "audio_id2": None,
            "reverb_id2": None,
            "question_id": row["id"], "question_type": row["question_type"], "question": row["question"],
            "answer": row["output"]}


def write_json(records: Iterable[dict], path: str | Path) -> int:
    """A JSON list, written streaming (OpenAQA-sized sets do not fit twice in memory) to a
    temporary name and renamed when whole: a failed export leaves no half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "w") as f:
            f.write("[")
            for record in records:
                f.write(("," if n else "") + "\n" + json.dumps(record, ensure_ascii=False))
                n += 1
            f.write("\n]\n")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return n


AUDIO_PATH_FIELDS = ("audio_id", "split", "fold")
DCASE_AUDIO_PATH = "foa_dev/{split}/fold{fold}_{audio_id}.wav"  # a clip in an FOA `roomtone export dcase`


def check_audio_path(template: str) -> None:
    """Refuse an LTU audio path template that names other fields or is malformed, before any file is written."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        template.format(audio_id="a", split="train", fold=1)
    except (ValueError, IndexError, KeyError) as exc:
        names = [f"<{exc}>"]
    bad = [n for n in names if n not in AUDIO_PATH_FIELDS]
    if bad:
        raise RoomtoneError(f"--audio-path {template!r} uses {', '.join(map(repr, bad))}, which is not a field it "
                            f"can fill", f"use {{audio_id}}, {{split}} and {{fold}}, e.g. {DCASE_AUDIO_PATH!r}")


def write_convention(path: str | Path, dataset: str, convention: str) -> None:
    """The coordinate frame and units of the records written beside it, whose formats have no key for them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"dataset": dataset, "convention": convention}, indent=1) + "\n")
