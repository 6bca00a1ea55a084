"""A pipeline spec: one YAML file describing a DAG of stages and the datasets between them.

```yaml
name: nightly
seed: 0                      # default seed of every stage that has one
stages:
  rooms:  {kind: rirs, array: foa, num_rooms: 100}
  events: {kind: synthetic_events, per_class: 20}
  scenes: {kind: scenes, events: events, rirs: rooms, num_scenes: 1000}
```

Each stage is ``kind`` plus the fields of that kind's config; its output dataset is named
after the stage unless ``name`` says otherwise. A stage's input fields (``events``,
``rirs``, ...) name another stage's output (an edge of the DAG) or an existing catalog
dataset, optionally pinned ``NAME@vN``. The whole spec is validated, and every external
input looked up, before any stage runs. A stage whose config and pinned inputs match the
dataset's current snapshot reuses it: the catalog keys every run by that hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml
from rich.console import Console
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from catalog import Catalog, Location, Snapshot
from catalog.errors import NotFoundError, RoomtoneError
from catalog.names import NAME
from pipelines import metrics
from pipelines.configs import describe_validation_error, read_yaml


@dataclass(frozen=True)
class Output:
    """What a stage made: ``ref`` is what later stages receive (NAME@SNAPSHOT, or a training run folder)."""

    ref: str
    summary: str
    snapshot: Snapshot | None = None
    reused: bool = False


@dataclass(frozen=True)
class StageKind:
    """One kind of stage: its config model, the fields naming datasets it reads (``inputs``) or
    another stage's run (``runs``, e.g. the checkpoint an evaluation loads), and the job."""

    config: Callable[[], type[BaseModel]]
    inputs: tuple[str, ...]
    run: Callable[[BaseModel, Catalog, str | None, bool], Output]
    help: str
    runs: tuple[str, ...] = ()
    makes_dataset: bool = True  # False for training and evaluation, whose output is a run folder
    # what the config and those of the spec's stages making its inputs can refuse, before any work:
    # check(config, {dataset name: config of the stage making it}, catalog)
    check: Callable[[], Callable[[BaseModel, dict[str, BaseModel], Catalog], None]] | None = None


def _dataset_stage(module: str, function: str) -> Callable[[BaseModel, Catalog, str | None, bool], Output]:
    """A stage that publishes one dataset; reused when the catalog already holds this config's snapshot."""
    def run(config, catalog: Catalog, address: str | None, show_progress: bool) -> Output:
        import importlib

        before = catalog.show(config.name).snapshot_id if catalog.exists(config.name) else None
        snap = getattr(importlib.import_module(module), function)(config, catalog, address=address,
                                                                  show_progress=show_progress)
        hours = snap.stats.get("audio_hours", 0)
        return Output(snap.ref, f"{snap.version_ref}: {snap.stats.get('rows')} rows"
                      + (f", {hours * 3600:.0f} s of audio" if hours else ""), snap, snap.snapshot_id == before)
    return run


def _pretrain(config, catalog: Catalog, address: str | None, show_progress: bool) -> Output:
    from pretrain.train import run_training

    result = run_training(config, catalog, address=address, show_progress=show_progress)
    return Output(result.run_dir, f"{result.run_name}: {result.steps} steps, MLflow run {result.mlflow_run_id}"
                  + (f", registered encoder v{result.model_version}" if result.model_version else ""),
                  reused=result.reused)


def _evaluate(config, catalog: Catalog, address: str | None, show_progress: bool) -> Output:
    from catalog.cluster import connect
    from pretrain.evaluate import run_eval

    connect(address)
    result = run_eval(config, catalog, show_progress=show_progress)
    scores = ", ".join(f"{k.rsplit('/', 1)[-1]} " + (f"{v:.3f}" if isinstance(v, float) else str(v))
                       for k, v in result["metrics"].items())
    return Output(result["checkpoint"], f"{config.mode} on {catalog.show(result['dataset']).version_ref}: {scores}",
                  reused=result["reused"])


def _check_reads_audio(config, made: dict, catalog: Catalog) -> None:
    """Training and evaluation read audio clips: a spec's RIR or QA stage writes none (found here,
    not after the stages before it have run)."""
    from pipelines.stages import check_clips

    check_clips("dataset", config.dataset, made, catalog)


def _lazy(module: str, attr: str) -> Callable[[], Any]:
    def load():
        import importlib

        return getattr(importlib.import_module(module), attr)
    return load


STAGE_KINDS: dict[str, StageKind] = {
    "synthetic_events": StageKind(_lazy("pipelines.stages.synthetic_events", "SyntheticEventsConfig"), (),
                                  _dataset_stage("pipelines.stages.synthetic_events", "run_synthetic_events"),
                                  "procedural labelled event library (no inputs)"),
    "events": StageKind(_lazy("pipelines.stages.events", "EventsConfig"), ("catalog_dataset",),
                        _dataset_stage("pipelines.stages.events", "run_ingest_events"),
                        "ingest an event library from a folder, HF dataset or catalog dataset"),
    "rirs": StageKind(_lazy("pipelines.stages.rirs", "RirsConfig"), (),
                      _dataset_stage("pipelines.stages.rirs", "run_rirs"), "spatial RIRs of sampled rooms",
                      check=_lazy("pipelines.stages.rirs", "check_in_spec")),
    "scenes": StageKind(_lazy("pipelines.stages.scenes", "ScenesConfig"), ("events", "rirs"),
                        _dataset_stage("pipelines.stages.scenes", "run_scenes"), "labelled SELD scenes",
                        check=_lazy("pipelines.stages.scenes", "check_in_spec")),
    "augment": StageKind(_lazy("pipelines.stages.augment", "AugmentConfig"), ("source", "rirs"),
                         _dataset_stage("pipelines.stages.augment", "run_augment"),
                         "replayable augmentation recipes (mixing, reverb, rotations, ...)",
                         check=_lazy("pipelines.stages.augment", "check_in_spec")),
    "qa": StageKind(_lazy("pipelines.stages.qa", "QaConfig"), ("source",),
                    _dataset_stage("pipelines.stages.qa", "run_qa"), "question-answer tuples from metadata",
                    check=_lazy("pipelines.stages.qa", "check_in_spec")),
    "pretrain": StageKind(_lazy("pretrain.config", "TrainConfig"), ("dataset",), _pretrain,
                          "SSAST / BEATs / supervised training on Ray Train, tracked in MLflow", makes_dataset=False,
                          check=lambda: _check_reads_audio),
    "eval": StageKind(_lazy("pretrain.config", "EvalConfig"), ("dataset",), _evaluate,
                      "linear probe, fine-tuning or SELD scores of a training stage's run", runs=("checkpoint",),
                      makes_dataset=False, check=lambda: _check_reads_audio),
}


class PipelineSpec(BaseModel):
    """The file format; stage bodies are checked against their kind's config in :func:`load_spec`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    seed: int | None = Field(None, ge=0, description="default seed of every stage whose config has one")
    stages: dict[str, dict[str, Any]] = Field(min_length=1)

    @field_validator("stages")
    @classmethod
    def _kinds(cls, stages: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for key, body in stages.items():
            if not NAME.match(key):  # the default output name, and how other stages refer to it
                raise ValueError(f"stage key {key!r} is invalid: use 1-63 lowercase letters, digits and "
                                 "underscores, starting with a letter")
            if not isinstance(body, dict) or "kind" not in body:
                raise ValueError(f"stage {key!r} needs a `kind:` ({', '.join(STAGE_KINDS)})")
            if not isinstance(body["kind"], str) or body["kind"] not in STAGE_KINDS:
                raise ValueError(f"stage {key!r} has unknown kind {body['kind']!r}; "
                                 f"known kinds: {', '.join(STAGE_KINDS)}")
        return stages


@dataclass
class Stage:
    key: str
    kind: str
    config: BaseModel
    needs: tuple[str, ...]  # stage keys whose outputs this stage reads

    @property
    def output(self) -> str:
        """The dataset it writes, or for a training or evaluation stage its key."""
        return getattr(self.config, "name", None) or self.key


@dataclass
class Plan:
    spec: PipelineSpec
    stages: list[Stage]  # in an order where every stage follows the ones it needs

    @property
    def digest(self) -> str:
        """Hash of the validated spec: the same work gives the same digest whatever the YAML layout."""
        body = {"name": self.spec.name, "stages": {s.key: [s.kind, s.config.model_dump(mode="json")]
                                                   for s in self.stages}}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class StageResult:
    stage: str
    kind: str
    output: Output
    seconds: float

    @property
    def snapshot(self) -> Snapshot | None:
        return self.output.snapshot

    @property
    def reused(self) -> bool:
        return self.output.reused


def read_spec(path: str | Path) -> dict:
    data = read_yaml(Path(path), "spec file", "give the path of a pipeline spec YAML")
    if not isinstance(data, dict):
        raise RoomtoneError(f"spec file {path} must hold a mapping with name and stages",
                            "see pipelines/specs/demo.yaml for the layout")
    return data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``STAGE.FIELD=VALUE`` (the value read as YAML) or ``seed=N`` on top of a spec mapping."""
    stages = data.get("stages", {})
    data = {**data, "stages": {k: dict(v) if isinstance(v, dict) else v for k, v in stages.items()}
            if isinstance(stages, dict) else stages}  # not a mapping: the validation names it
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise RoomtoneError(f"override {item!r} has no '='", "write STAGE.FIELD=VALUE, e.g. scenes.num_scenes=4")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise RoomtoneError(f"override {item!r}: the value is not valid YAML",
                                "quote a string value, e.g. --set 'scenes.name=\"x\"', or fix the brackets") from None
        if "." not in key:
            data[key] = value
            continue
        stage, field = key.split(".", 1)
        known = data["stages"] if isinstance(data["stages"], dict) else {}
        if not isinstance(known.get(stage), dict):
            raise RoomtoneError(f"override {item!r} names no stage of the spec",
                                f"stages are: {', '.join(map(str, known)) or 'none'}")
        data["stages"][stage][field] = value
    return data


def plan_spec(data: dict, *, where: str = "spec", overrides: list[str] = ()) -> Plan:
    """Validate every stage's config and order the DAG; no catalog access, no work."""
    data = apply_overrides(data, list(overrides))
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        raise describe_validation_error(exc, where, PipelineSpec.model_fields) from None
    stages: dict[str, Stage] = {}
    for key, body in spec.stages.items():
        kind = STAGE_KINDS[body["kind"]]
        model = kind.config()
        values = {k: v for k, v in body.items() if k != "kind"}
        if "name" in model.model_fields:
            values.setdefault("name", key)
        if spec.seed is not None and "seed" in model.model_fields:
            values.setdefault("seed", spec.seed)
        try:
            config = model.model_validate(values)
        except ValidationError as exc:
            raise describe_validation_error(exc, f"stage {key!r} ({body['kind']}) of {where}",
                                            model.model_fields) from None
        stages[key] = Stage(key, body["kind"], config, ())
    producers = {s.output: key for key, s in stages.items()}
    if len(producers) != len(stages):
        dupes = sorted({s.output for s in stages.values() if sum(t.output == s.output for t in stages.values()) > 1})
        raise RoomtoneError(f"two stages of {where} write the same dataset {dupes}",
                            "give each stage its own `name`")
    for stage in stages.values():
        kind = STAGE_KINDS[stage.kind]
        refs = [getattr(stage.config, f) for f in kind.inputs]
        needs = [producers[r] for r in refs if r and "@" not in r and r in producers]
        for field in kind.runs:  # e.g. eval's checkpoint: a training stage's key, or a path
            if getattr(stage.config, field) in stages:
                needs.append(getattr(stage.config, field))
        stage.needs = tuple(dict.fromkeys(needs))
    return Plan(spec, _topological(stages, where))


def _topological(stages: dict[str, Stage], where: str) -> list[Stage]:
    order, done, visiting = [], set(), []

    def visit(key: str) -> None:
        if key in done:
            return
        if key in visiting:
            cycle = visiting[visiting.index(key):] + [key]
            raise RoomtoneError(f"the stages of {where} form a cycle: {' -> '.join(cycle)}",
                                "a stage cannot read, directly or through others, the dataset it writes")
        visiting.append(key)
        for need in stages[key].needs:
            visit(need)
        visiting.pop()
        done.add(key)
        order.append(stages[key])

    for key in stages:
        visit(key)
    return order


def check_external_inputs(plan: Plan, catalog: Catalog) -> None:
    """Before anything runs: every input no stage of the spec makes is already in the catalog, every
    checkpoint no stage makes exists, and each stage passes the checks its config (with the configs of
    the stages making its inputs) allows."""
    made = {s.output: s.config for s in plan.stages if STAGE_KINDS[s.kind].makes_dataset}
    for stage in plan.stages:
        kind = STAGE_KINDS[stage.kind]
        for field in kind.inputs:
            ref = getattr(stage.config, field)
            if not ref or ref in made:
                continue
            try:
                catalog.show(ref)
            except NotFoundError as exc:
                name = ref.split("@")[0]
                raise RoomtoneError(f"stage {stage.key!r} field {field!r}: {exc.problem}",
                                    f"name a version it has (roomtone catalog history {name})"
                                    if catalog.exists(name) else
                                    f"add a stage that makes {name!r}, or name an existing dataset "
                                    "(roomtone catalog ls)") from None
        for field in kind.runs:
            path = getattr(stage.config, field)
            if path and path not in stage.needs and not Location.parse(path).exists():
                raise RoomtoneError(f"stage {stage.key!r} field {field!r}: {path} does not exist",
                                    "name a training stage of the spec, or the run folder or checkpoint of a "
                                    "finished run")
        if kind.check:
            try:
                kind.check()(stage.config, made, catalog)
            except RoomtoneError as exc:
                raise RoomtoneError(f"stage {stage.key!r} ({stage.kind}): {exc.problem}", exc.fix) from None


def run_plan(plan: Plan, catalog: Catalog, *, address: str | None = None, show_progress: bool = True,
             on_stage: Callable[[StageResult], None] | None = None) -> list[StageResult]:
    """Run the stages in order on one Ray cluster; a stage with unchanged config and inputs is reused."""
    check_external_inputs(plan, catalog)
    os.environ[metrics.PIPELINE_ENV] = plan.spec.name
    results, outputs, console = [], {}, Console(stderr=True)
    for i, stage in enumerate(plan.stages, 1):
        if show_progress:
            console.rule(f"[{i}/{len(plan.stages)}] {stage.key} ({stage.kind})")
        kind = STAGE_KINDS[stage.kind]
        # read exactly what the earlier stages of this run made, not whatever is newest by then
        pins = {f: outputs[getattr(stage.config, f)].ref for f in kind.inputs + kind.runs
                if getattr(stage.config, f) in outputs}
        start = time.perf_counter()
        try:
            output = kind.run(stage.config.model_copy(update=pins), catalog, address, show_progress)
        except RoomtoneError as exc:
            raise RoomtoneError(f"stage {stage.key!r} ({stage.kind}) failed: {exc.problem}", exc.fix) from exc
        outputs[stage.output] = outputs[stage.key] = output
        result = StageResult(stage.key, stage.kind, output, time.perf_counter() - start)
        results.append(result)
        if on_stage:
            on_stage(result)
    return results
