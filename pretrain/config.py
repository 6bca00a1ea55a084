"""Typed configs of pretraining and evaluation runs; the defaults are the demo's tiny run.

Every field is checked at the door (unknown keys refused), so a typo fails before Ray,
MLflow or a model is started.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from catalog.fields import DatasetRefText, Seed

Method = Literal["ssast", "beats", "supervised"]
MODEL_FAMILIES = {"ssast": ("ssast",), "beats": ("beats",), "supervised": ("tagging", "seld")}
DEFAULT_MODEL = {"ssast": "ssast-tiny", "beats": "beats-tiny", "supervised": "tagging-tiny"}


class TrainConfig(BaseModel):
    """One pretraining (or supervised) run on a catalog dataset."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    method: Method = "ssast"
    model: str | None = Field(None, description="registry name, e.g. ssast-base, seld-small; default: the "
                                                "method's tiny model (ssast-tiny, beats-tiny, tagging-tiny)")
    model_overrides: dict = Field(default_factory=dict, description="keyword overrides for create_model")
    dataset: DatasetRefText = Field("scenes", description="NAME or NAME@snapshot of a catalog dataset with an "
                                                          "audio column")
    split: str = "train"
    clip_seconds: float = Field(2.56, gt=0.1, le=60, description="random crop per clip (shorter clips are padded)")
    sample_rate: int = Field(16_000, ge=8_000, le=48_000, description="model input rate (SSAST/BEATs: 16 kHz)")
    steps: int = Field(200, ge=1, le=10_000_000, description="optimizer steps")
    batch_size: int = Field(16, ge=1, le=65_536, description="global batch (all workers, one optimizer step)")
    grad_accum: int = Field(1, ge=1, le=1024, description="micro-batches per optimizer step")
    lr: float = Field(5e-4, gt=0, le=10)
    min_lr_ratio: float = Field(0.01, ge=0, le=1, description="cosine floor as a fraction of lr")
    warmup_steps: int = Field(20, ge=0, le=10_000_000, description="default 20, or steps // 10 for runs of "
                                                                    "20 steps or fewer")
    weight_decay: float = Field(0.01, ge=0, le=10)
    betas: tuple[float, float] = Field((0.95, 0.999), description="Adam betas, each in [0, 1)")
    grad_clip: float | None = Field(1.0, gt=0, le=1e6)
    seed: Seed = 0
    num_workers: int = Field(1, ge=1, le=4096, description="Ray Train workers (one DDP rank each)")
    cpus_per_worker: float = Field(1.0, gt=0, le=1024)
    data_cpus: float = Field(1.0, gt=0, le=1024, description="CPUs per Ray Data decode/feature task")
    use_gpu: bool | None = Field(None, description="None: use GPUs when the cluster has them")
    checkpoint_every: int = Field(50, ge=1, le=10_000_000)
    keep_checkpoints: int = Field(3, ge=1, le=1000)
    log_checkpoints: Literal["all", "final", "none"] = Field("final", description="which checkpoints MLflow stores")
    max_failures: int = Field(2, ge=0, le=1000, description="worker-group restarts from the last checkpoint")
    storage: str | None = Field(None, description="checkpoint location (local or s3://); default <root>/runs")
    run_name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
                                 description="default: method-model-dataset-<config hash>; same name resumes")
    tracking_uri: str | None = Field(None, description="MLflow; default MLFLOW_TRACKING_URI or sqlite under root")
    experiment: str = "roomtone-pretrain"
    register_as: str | None = Field(None, description="model registry name; default roomtone-<model>")
    teacher: str | None = Field(None, description="beats-tokenizer-*: the previous BEATs iteration (run folder or "
                                                   "checkpoint), distilled into the tokenizer")
    tokenizer: str | None = Field(None, description="beats-* iteration 2+: a beats-tokenizer-* run folder or "
                                                     "checkpoint whose codes are the labels (default: iteration 1's "
                                                     "random projection)")
    augment: list[dict] = Field(default_factory=list, description="recipe steps applied on the fly to every cropped "
                                "clip, as `roomtone augment` takes them, e.g. [{name: gain, p: 0.5}, {name: rotate}]: "
                                "gain, noise, shift; speed (not SELD); rotate (SELD, FOA)")
    spec_augment: bool | None = Field(None, description="SpecAugment stripes on the features (supervised runs); "
                                                         "default: on for tagging, as PANNs and AST train")
    features_on: Literal["loader", "device"] = Field(
        "loader", description="where the recipe steps, features and SpecAugment run: 'loader' in the Ray Data CPU "
        "tasks; 'device' on each training rank after it receives the batch (its GPU when the run uses GPUs), so "
        "the loader only decodes and crops, and data_cpus can shrink. Same draws, same inputs either way")
    mixup_alpha: float = Field(0.0, ge=0, le=100, description="tagging: mix each micro-batch with itself shuffled, "
                                                               "lam ~ Beta(a, a); 0 = off")

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must each lie in [0, 1); got {list(self.betas)}")
        if self.model is None:
            self.model = DEFAULT_MODEL[self.method]
        family = self.model.split("-")[0]
        if family not in MODEL_FAMILIES[self.method]:
            allowed = " or ".join(f"{f}-*" for f in MODEL_FAMILIES[self.method])
            raise ValueError(f"model {self.model!r} does not fit method {self.method!r}: use {allowed}")
        _check_augment(self.augment, family)
        tokenizer_run = self.model.rpartition("-")[0] == "beats-tokenizer"
        if tokenizer_run != bool(self.teacher):
            raise ValueError("a beats-tokenizer-* run distils a teacher: set teacher to the previous BEATs iteration"
                             if tokenizer_run else f"teacher is for beats-tokenizer-* runs, not {self.model}")
        if self.tokenizer and (family != "beats" or tokenizer_run):
            raise ValueError(f"tokenizer is for beats-* pretraining (iteration 2+), not {self.model}")
        if self.spec_augment is None:
            self.spec_augment = family == "tagging"
        elif self.spec_augment and self.method != "supervised":
            raise ValueError(f"spec_augment is for supervised runs; {self.method} masks its own input")
        if self.mixup_alpha and family != "tagging":
            raise ValueError(f"mixup_alpha is for tagging runs (multi-hot targets mix); {self.model} is {family}")
        if self.batch_size % (self.num_workers * self.grad_accum):
            raise ValueError(f"batch_size={self.batch_size} must split evenly over num_workers={self.num_workers}"
                             f" x grad_accum={self.grad_accum}")
        if "warmup_steps" not in self.model_fields_set and self.warmup_steps >= self.steps:
            self.warmup_steps = self.steps // 10  # the default warm-up is for runs longer than it
        if self.warmup_steps >= self.steps and self.steps > 1:
            raise ValueError(f"warmup_steps={self.warmup_steps} must be below steps={self.steps}")
        return self

    @property
    def family(self) -> str:
        return self.model.split("-")[0]

    @property
    def micro_batch(self) -> int:
        """Rows one worker feeds to one forward pass."""
        return self.batch_size // (self.num_workers * self.grad_accum)


# steps that change a clip alone; mix and reverb need a partner pool or an RIR dataset
ON_THE_FLY = {"seld": ("gain", "noise", "shift", "rotate")}
ON_THE_FLY_DEFAULT = ("gain", "noise", "shift", "speed")


def _check_augment(steps: list[dict], family: str) -> None:
    from simulation.augment import Spec

    allowed = ON_THE_FLY.get(family, ON_THE_FLY_DEFAULT)
    for i, step in enumerate(steps):
        try:
            name = Spec.from_dict(step).name
        except ValueError as exc:
            raise ValueError(f"augment[{i}]: {exc}") from None
        if name not in allowed:
            why = {"mix": "mix and reverb need partner clips or an RIR dataset: make them offline with "
                          "`roomtone augment`, then train on its output",
                   "speed": "speed would need each clip's events to rescale its frame labels",
                   "rotate": "rotate needs 4-channel FOA input, which only SELD models read"}
            raise ValueError(f"augment[{i}]: {name} cannot run on the fly in a {family} run "
                             f"({why.get(name, why['mix'])}); on the fly: {', '.join(allowed)}")


class EvalConfig(BaseModel):
    """Linear probe, fine-tuning or SELD scoring of a trained run on a labelled catalog dataset."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    mode: Literal["probe", "finetune", "seld"] = "probe"
    checkpoint: str = Field(..., description="a roomtone checkpoint (path or s3:// URI) or a run folder")
    dataset: DatasetRefText = Field("events", description="NAME or NAME@snapshot with labels")
    train_split: str = "train"
    test_split: str = "test"
    clip_seconds: float | None = Field(None, gt=0.1, le=60, description="default: the training run's")
    steps: int = Field(300, ge=1, le=1_000_000, description="probe / fine-tuning optimizer steps")
    batch_size: int = Field(32, ge=1, le=65_536)
    lr: float = Field(1e-2, gt=0, le=10, description="probe lr; fine-tuning uses lr / 10 on the encoder")
    weight_decay: float = Field(1e-4, ge=0, le=10)
    seed: Seed = 0
    mlflow_run_id: str | None = Field(None, description="log to this run; default: the checkpoint's run")
    tracking_uri: str | None = None
