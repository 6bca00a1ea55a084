"""Augmentations as recipes: typed records of every drawn value, registered by name, replayable.

A `Recipe` lists the steps applied to one clip (e.g. `Mix`, then `Rotate`), with the
seed, epoch, item id and parent ids it came from. Steps are drawn from `Spec`s (name,
probability, parameter ranges) with a generator the caller derives from (seed, epoch,
item id); applying a recipe to the same inputs gives the same output bit for bit, and
`Recipe.from_json(recipe.to_json())` replays it. Values that depend on the audio
(mixing gains, the RIR's direct-path sample, the reverb gain) are resolved on first
application and recorded, so the metadata alone can be updated from the recipe.

AudioGen (audiocraft `sound_dataset.py`) mixing, kept: both clips normalised to -25 dBFS
RMS, the second lowered by the SNR, the sum rescaled to a random RMS in [-35, -15) dBFS
and lowered to a 0.99 peak if it would clip, the second clip at an offset keeping at least
50 % overlap. Changed on purpose: the SNR is a float from a range (default -5..5 dB, not
integers -5..4); RMS is measured over the output window after placement, so the stated
SNR is the SNR of the two parents as heard; multichannel clips are mixed channel for
channel; the offset is a whole number of label frames, so frame labels shift exactly;
the offset, SNR, target level, gains and caption template are all recorded.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import numpy as np
import torch

from . import functional as F
from .metadata import (MIX_TEMPLATES, forget_ambience, forget_powers, merge_meta, rotate_meta, scale_levels,
                       speed_meta, time_shift_meta)
from .spatial import channel_map, valid_patterns

__all__ = ["STEPS", "Context", "Gain", "Mix", "Noise", "Recipe", "Resources", "Reverb", "Rotate", "Shift", "Spec",
           "Speed", "Step", "apply_recipe", "apply_recipe_batch", "apply_recipe_meta", "draw_recipe",
           "sometimes_upmixed"]

STEPS: dict[str, type["Step"]] = {}
NORM_DB, PEAK = -25.0, 0.99


@dataclass(frozen=True)
class Context:
    """What drawing needs to know about one clip: the output id, its length (samples), rate,
    format ('foa', 'mic' or None), label hop (time offsets are whole hops when set), the
    mixing candidates as (id, length), the RIR ids, the id of the clip it starts from
    (default: the output id), and `skip`: the sorted indices of the candidates it must not mix
    with (default: those that are the clip itself; a job adds copies of the same recording)."""

    item_id: str
    length: int
    rate: int
    fmt: str | None = None
    hop: float | None = None
    partners: Sequence[tuple[str, int]] = ()
    rirs: Sequence[str] = ()
    parent_id: str | None = None
    skip: tuple[int, ...] | None = None

    @property
    def parent(self) -> str:
        return self.parent_id or self.item_id

    @property
    def grid(self) -> int:
        """Offsets are drawn in steps of this many samples: the fewest that span whole label frames
        (0.1 s at 11025 Hz: 2205 samples, two frames; rounding to 1102 failed every shifted row)."""
        return (Fraction(str(self.hop)) * self.rate).numerator if self.hop else 1


@dataclass
class Resources:
    """Audio a recipe refers to by id: mixing partners (C, T) with their metadata, RIRs (Cr, L)
    with the room each was simulated in (`room_id`, `rt60`, `room_dims`), which a clip
    reverberated by it then describes."""

    partners: Mapping[str, torch.Tensor] = field(default_factory=dict)
    partner_meta: Mapping[str, dict] = field(default_factory=dict)
    rirs: Mapping[str, torch.Tensor] = field(default_factory=dict)
    rir_rooms: Mapping[str, dict] = field(default_factory=dict)


def _uniform(rng: np.random.Generator, lo_hi: Sequence[float]) -> float:
    lo, hi = lo_hi
    return float(lo if lo == hi else rng.uniform(lo, hi))


class Step:
    """A drawn augmentation step; subclasses are frozen dataclasses registered by `name`."""

    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}
    limits: ClassVar[dict[str, tuple[float, float]]] = {}  # ranges a parameter's [min, max] must lie in
    # FFT-based steps: pocketfft's last bits depend on the input's alignment
    fft: ClassVar[bool] = False

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        STEPS[cls.name] = cls

    def to_dict(self) -> dict:
        return {"name": self.name, **asdict(self)}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> "Step":
        data = dict(data)
        name = data.pop("name", None)
        if name not in STEPS:
            raise ValueError(f"unknown augmentation {name!r}; known: {sorted(STEPS)}")
        return STEPS[name](**data)

    @classmethod
    def draw(cls, rng: np.random.Generator, ctx: Context, **ranges) -> "Step":
        raise NotImplementedError

    def meta(self, meta: dict, rate: int, hop: float, res: Resources) -> dict:
        return meta

    @classmethod
    def audio(cls, steps: list["Step"], x: torch.Tensor, rate: int, res: Resources) -> tuple[torch.Tensor, list]:
        """Apply same-kind steps to a batch (one per item); return the audio and resolved steps."""
        raise NotImplementedError


@dataclass(frozen=True)
class Mix(Step):
    """Mix with `partner_id` placed at `offset` samples, `snr_db` below, sum at `mix_rms_db` dBFS.

    Resolved on first application: `gain_a`, `gain_b` (linear gains of the two parents) and
    `limit` (the factor that kept the mixture's peak at 0.99, 1.0 when it did not clip);
    each parent's overall gain is gain * limit. `gain_b` 0: the partner was silent where it lay
    (`functional.SILENT_DBFS`), so the row is the first clip alone, rescaled, and says so."""

    name: ClassVar[str] = "mix"
    defaults: ClassVar[dict] = {"snr_db": (-5.0, 5.0), "mix_rms_db": (-35.0, -15.0), "min_overlap": 0.5}
    # beyond these one parent is inaudible (or the mixture below 16-bit's floor) while its labels stay
    limits: ClassVar[dict] = {"snr_db": (-30.0, 30.0), "mix_rms_db": (-60.0, 0.0)}
    partner_id: str
    snr_db: float
    offset: int
    mix_rms_db: float
    template: int = 0
    gain_a: float | None = None
    gain_b: float | None = None
    limit: float | None = None

    @classmethod
    def draw(cls, rng, ctx, snr_db=(-5.0, 5.0), mix_rms_db=(-35.0, -15.0), min_overlap=0.5):
        skip = ctx.skip if ctx.skip is not None else [k for k, (i, _) in enumerate(ctx.partners) if i == ctx.parent]
        if len(ctx.partners) <= len(skip):
            raise ValueError(f"no clip to mix {ctx.parent!r} with: the pool holds no other recording")
        k = int(rng.integers(len(ctx.partners) - len(skip)))  # the k-th candidate not skipped (O(skipped))
        for s in skip:
            if s > k:
                break
            k += 1
        partner, n2 = ctx.partners[k]
        need = math.ceil(min_overlap * min(ctx.length, n2))
        lo, hi = math.ceil((need - n2) / ctx.grid), math.floor((ctx.length - need) / ctx.grid)
        if lo > hi:
            raise ValueError(f"clips {ctx.parent!r} and {partner!r} cannot overlap by {min_overlap:.0%} "
                             f"on a {ctx.grid}-sample grid")
        offset = int(rng.integers(lo, hi + 1)) * ctx.grid
        return cls(partner, _uniform(rng, snr_db), offset, _uniform(rng, mix_rms_db),
                   int(rng.integers(len(MIX_TEMPLATES))))

    def meta(self, meta, rate, hop, res):
        if self.gain_a is None:
            raise ValueError("this Mix step has no gains yet: apply it to audio first, or give gain_a and gain_b")
        if self.gain_b == 0.0:   # a silent partner adds no sound, so no events
            return scale_levels(meta, self.gain_a * (self.limit or 1.0))
        return merge_meta(meta, res.partner_meta[self.partner_id], self.offset, rate, hop,
                          self.gain_a * (self.limit or 1.0), self.gain_b * (self.limit or 1.0), self.template)

    @classmethod
    def audio(cls, steps, x, rate, res):
        partners = []
        for s in steps:
            p = res.partners[s.partner_id].to(device=x.device, dtype=x.dtype)
            if p.shape[0] != x.shape[1]:
                raise ValueError(f"cannot mix {x.shape[1]}-channel audio with {s.partner_id!r} "
                                 f"({p.shape[0]} channels): mix clips of one format")
            partners.append(p)
        offsets = [s.offset for s in steps]
        gains = [(s.gain_a, s.gain_b) for s in steps]
        if any(s.gain_a is None for s in steps):
            fresh = F.mix_gains(x, partners, offsets, [s.snr_db for s in steps], NORM_DB,
                                [s.mix_rms_db for s in steps])
            gains = [g if g[0] is not None else f for g, f in zip(gains, fresh)]
        y = F.mix(x, partners, offsets, gains, [s.limit or 1.0 for s in steps])
        limits = [s.limit for s in steps]
        if None in limits:  # AudioGen: a mixture that would clip is lowered to the peak
            limits = F.peak_limits(y, PEAK)
            for i, lim in enumerate(limits):
                if lim != 1.0:
                    y[i].mul_(lim)  # the same operation `mix` replays from the recorded limit
        return y, [_replace(s, gain_a=g[0], gain_b=g[1], limit=lim) for s, g, lim in zip(steps, gains, limits)]


@dataclass(frozen=True)
class Reverb(Step):
    """Convolve with RIR `rir_id` channel by channel, aligned on its direct path (`onset` sample),
    scaled by `gain` so the wet clip keeps the dry clip's RMS."""

    name: ClassVar[str] = "reverb"
    fft: ClassVar[bool] = True
    rir_id: str
    onset: int | None = None
    gain: float | None = None

    @classmethod
    def draw(cls, rng, ctx):
        if not ctx.rirs:
            raise ValueError("reverb needs RIRs: none were given")
        return cls(ctx.rirs[int(rng.integers(len(ctx.rirs)))])

    def meta(self, meta, rate, hop, res):
        # event times and directions are those of the direct path, unchanged; the room, of all the
        # clip's audio (a mixture's too), is the RIR's
        room = res.rir_rooms.get(self.rir_id, {})
        out = forget_powers({**meta, **room})
        if room.get("room_id"):
            out["room_ids"] = [room["room_id"]]
        return out

    @classmethod
    def audio(cls, steps, x, rate, res):
        rirs = [res.rirs[s.rir_id] for s in steps]
        steps = [s if s.onset is not None else _replace(s, onset=F.direct_path_index(r.cpu().numpy()))
                 for s, r in zip(steps, rirs)]
        wet = F.convolve_aligned(x, rirs, [s.onset for s in steps])
        if any(s.gain is None for s in steps):
            ratio = (F.rms(x) / F.rms(wet).clamp_min(1e-12)).tolist()
            steps = [s if s.gain is not None else _replace(s, gain=float(r)) for s, r in zip(steps, ratio)]
        return wet * torch.as_tensor([s.gain for s in steps], dtype=x.dtype, device=x.device)[:, None, None], steps


@dataclass(frozen=True)
class Noise(Step):
    """White Gaussian noise `snr_db` below the clip's RMS, drawn from `seed`."""

    name: ClassVar[str] = "noise"
    defaults: ClassVar[dict] = {"snr_db": (10.0, 40.0)}
    limits: ClassVar[dict] = {"snr_db": (-10.0, 100.0)}  # below -10 dB the labelled events drown
    snr_db: float
    seed: int

    @classmethod
    def draw(cls, rng, ctx, snr_db=(10.0, 40.0)):
        return cls(_uniform(rng, snr_db), int(rng.integers(2**63 - 1)))

    def meta(self, meta, rate, hop, res):
        return forget_ambience(meta)

    @classmethod
    def audio(cls, steps, x, rate, res):
        return F.add_noise(x, [s.snr_db for s in steps], [s.seed for s in steps]), steps


@dataclass(frozen=True)
class Gain(Step):
    name: ClassVar[str] = "gain"
    defaults: ClassVar[dict] = {"gain_db": (-6.0, 6.0)}
    limits: ClassVar[dict] = {"gain_db": (-60.0, 24.0)}  # -200 dB wrote silence that kept its labels
    gain_db: float

    @classmethod
    def draw(cls, rng, ctx, gain_db=(-6.0, 6.0)):
        return cls(_uniform(rng, gain_db))

    def meta(self, meta, rate, hop, res):
        return scale_levels(meta, 10.0 ** (self.gain_db / 20.0))

    @classmethod
    def audio(cls, steps, x, rate, res):
        return F.apply_gain(x, [s.gain_db for s in steps]), steps


@dataclass(frozen=True)
class Shift(Step):
    """Delay by `samples` (negative: advance), zero-filled, length kept."""

    name: ClassVar[str] = "shift"
    defaults: ClassVar[dict] = {"seconds": (-0.5, 0.5)}
    samples: int

    @classmethod
    def draw(cls, rng, ctx, seconds=(-0.5, 0.5)):
        lo, hi = math.ceil(seconds[0] * ctx.rate / ctx.grid), math.floor(seconds[1] * ctx.rate / ctx.grid)
        return cls(int(rng.integers(lo, hi + 1)) * ctx.grid if lo <= hi else 0)

    def meta(self, meta, rate, hop, res):
        return time_shift_meta(meta, self.samples, rate, hop)

    @classmethod
    def audio(cls, steps, x, rate, res):
        return F.shift(x, [s.samples for s in steps]), steps


@dataclass(frozen=True)
class Speed(Step):
    """Play `factor` times faster (resampled; pitch follows), length kept."""

    name: ClassVar[str] = "speed"
    fft: ClassVar[bool] = True
    defaults: ClassVar[dict] = {"factor": (0.9, 1.1)}
    limits: ClassVar[dict] = {"factor": (0.25, 4.0)}  # 0 or less plays nothing, or backwards
    factor: float

    @classmethod
    def draw(cls, rng, ctx, factor=(0.9, 1.1)):
        return cls(round(_uniform(rng, factor), 4))

    def meta(self, meta, rate, hop, res):
        return speed_meta(meta, self.factor, hop)

    @classmethod
    def audio(cls, steps, x, rate, res):
        return F.speed(x, [s.factor for s in steps]), steps


@dataclass(frozen=True)
class Rotate(Step):
    """ACS pattern `pattern` (see `spatial`) of a 'foa' or 'mic' clip; directions follow."""

    name: ClassVar[str] = "rotate"
    defaults: ClassVar[dict] = {"patterns": None}
    pattern: int
    fmt: str

    @classmethod
    def draw(cls, rng, ctx, patterns=None):
        allowed = [p for p in (patterns or range(16)) if p in valid_patterns(ctx.fmt)] if ctx.fmt in ("foa", "mic") \
            else None
        if not allowed:
            raise ValueError(f"rotation needs 'foa' or 'mic' clips and patterns they support; format {ctx.fmt!r}, "
                             f"patterns {patterns}")
        return cls(int(allowed[int(rng.integers(len(allowed)))]), ctx.fmt)

    def meta(self, meta, rate, hop, res):
        return rotate_meta(meta, self.pattern)

    @classmethod
    def audio(cls, steps, x, rate, res):
        maps = [channel_map(s.pattern, s.fmt) for s in steps]
        if x.shape[1] != 4:
            raise ValueError(f"rotation needs 4-channel FOA or MIC audio; got {x.shape[1]} channels")
        return F.channel_swap(x, [m[0] for m in maps], [m[1] for m in maps]), steps


def _replace(step: Step, **changes) -> Step:
    return type(step)(**{**{f.name: getattr(step, f.name) for f in fields(step)}, **changes})


@dataclass(frozen=True)
class Spec:
    """One configured augmentation: a registered name, the probability it applies, its ranges."""

    name: str
    p: float = 1.0
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Spec":
        """{"name": "mix", "p": 0.5, "snr_db": [-5, 5]}: unknown names or keys and bad ranges raise ValueError."""
        data = dict(data)
        name, p = data.pop("name", None), data.pop("p", 1.0)
        if name not in STEPS:
            raise ValueError(f"unknown augmentation {name!r}; known: {sorted(STEPS)}")
        step = STEPS[name]
        unknown = sorted(set(data) - set(step.defaults))
        if unknown:
            raise ValueError(f"{name} has no parameter(s) {unknown}; it takes {sorted(step.defaults)}")
        if not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
            raise ValueError(f"{name}: p must be a probability in [0, 1]; got {p!r}")
        for key, value in data.items():
            default = step.defaults[key]
            if isinstance(default, tuple):
                if len(value) != 2 or not all(math.isfinite(v) for v in value) or value[0] > value[1]:
                    raise ValueError(f"{name}.{key} must be a range [min, max] with min <= max; got {list(value)}")
                lo, hi = step.limits.get(key, (-math.inf, math.inf))
                if not lo <= value[0] <= value[1] <= hi:
                    raise ValueError(f"{name}.{key} must lie in [{lo:g}, {hi:g}]; got {list(value)}")
                data[key] = (float(value[0]), float(value[1]))
            elif key == "min_overlap" and not 0.0 < value <= 1.0:
                raise ValueError(f"{name}.min_overlap must be in (0, 1]; got {value}")
            elif key == "patterns" and value is not None and (not value or not all(0 <= v < 16 for v in value)):
                raise ValueError(f"{name}.patterns must be a non-empty list of integers in [0, 16); got {value}")
        return cls(name, float(p), data)


def sometimes_upmixed(specs: Sequence[Spec], rir_channels: Iterable[int]) -> int | None:
    """The index of a reverb step that may not apply (p < 1) while its RIRs are multichannel: it
    would turn some mono clips multichannel and leave the others mono (None: no such step)."""
    if not any(c > 1 for c in rir_channels):
        return None
    return next((i for i, s in enumerate(specs) if s.name == "reverb" and s.p < 1), None)


@dataclass(frozen=True)
class Recipe:
    """Everything needed to replay one augmented clip."""

    item_id: str
    parent_ids: tuple[str, ...]
    seed: int
    epoch: int
    steps: tuple[Step, ...]

    def to_json(self) -> str:
        return json.dumps({"item_id": self.item_id, "parent_ids": list(self.parent_ids), "seed": self.seed,
                           "epoch": self.epoch, "steps": [s.to_dict() for s in self.steps]}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Recipe":
        d = json.loads(text)
        return cls(d["item_id"], tuple(d["parent_ids"]), d["seed"], d["epoch"],
                   tuple(Step.from_dict(s) for s in d["steps"]))


def draw_recipe(specs: Sequence[Spec], rng: np.random.Generator, ctx: Context, *, seed: int, epoch: int) -> Recipe:
    """Draw one recipe: for each spec in order, apply with probability p and draw its values.

    Each spec tosses its coin and draws its values from its own generator (one draw of `rng`
    and the spec's position seed them), so changing one spec's p or ranges never changes
    what another spec draws.
    """
    steps, base = [], int(rng.integers(2**63 - 1))
    for position, spec in enumerate(specs):
        own = np.random.default_rng([base, position])
        if own.random() < spec.p:
            steps.append(STEPS[spec.name].draw(own, ctx, **spec.params))
    parents = [ctx.parent] + [s.partner_id for s in steps if isinstance(s, Mix)]
    return Recipe(ctx.item_id, tuple(parents), int(seed), int(epoch), tuple(steps))


def apply_recipe_batch(recipes: Sequence[Recipe], audio: torch.Tensor, rate: int,
                       res: Resources | None = None) -> tuple[torch.Tensor, list[Recipe]]:
    """Apply one recipe per item of (B, C, T) audio; return the audio and the resolved recipes.

    At every step position, items whose steps share a kind run as one batched op; items
    whose recipe has ended pass through unchanged.
    """
    res = res or Resources()
    resolved = [list(r.steps) for r in recipes]
    x = audio
    for k in range(max((len(r) for r in resolved), default=0)):
        groups: dict[type | None, list[int]] = {}  # step kind (None: recipe ended) -> items
        for i, r in enumerate(resolved):
            groups.setdefault(type(r[k]) if len(r) > k else None, []).append(i)
        outputs = []
        for kind, idx in groups.items():
            whole = len(idx) == x.shape[0]
            part = x if whole else x[idx]
            y, done = (part, []) if kind is None else kind.audio([resolved[i][k] for i in idx], part, rate, res)
            for i, s in zip(idx, done):
                resolved[i][k] = s
            outputs.append((idx, y))
        if len(outputs) == 1:
            x = outputs[0][1]
            continue
        if len({tuple(y.shape[1:]) for _, y in outputs}) > 1:
            raise ValueError(f"step {k} gives items different shapes; batch them separately")
        x = outputs[0][1].new_empty((x.shape[0],) + tuple(outputs[0][1].shape[1:]))
        for idx, y in outputs:
            x[idx] = y
    return x, [Recipe(r.item_id, r.parent_ids, r.seed, r.epoch, tuple(s)) for r, s in zip(recipes, resolved)]


def apply_recipe_meta(recipe: Recipe, meta: dict, rate: int, *, hop: float = 0.1,
                      partner_meta: Mapping[str, dict] | None = None,
                      rir_rooms: Mapping[str, dict] | None = None) -> dict:
    """The metadata of the augmented clip, from the parent's metadata and a resolved recipe (no audio)."""
    res = Resources(partner_meta=partner_meta or {}, rir_rooms=rir_rooms or {})
    for step in recipe.steps:
        meta = step.meta(meta, rate, hop, res)
    return meta


@contextmanager
def _one_thread():
    """Torch splits FFTs and vectorised loops by thread count, which moves the last bits of a result."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def apply_recipe(recipe: Recipe, audio, rate: int, meta: dict | None = None, res: Resources | None = None, *,
                 hop: float = 0.1) -> tuple[torch.Tensor, dict | None, Recipe]:
    """One clip: audio (C, T) (numpy or torch) and its metadata in; audio, metadata, resolved recipe out.

    The offline path: it runs on one CPU thread (workers scale out by clips, not threads),
    on 64-byte aligned input, with order-fixed statistics, so any worker and any later
    replay compute the same bits.
    """
    x = (audio if torch.is_tensor(audio) else torch.from_numpy(np.asarray(audio))).unsqueeze(0)
    if any(s.fft for s in recipe.steps) and (x.data_ptr() % 64 or not x.is_contiguous()):
        x = x.contiguous().clone()  # FFTs see one alignment in every run
    with _one_thread():
        y, (done,) = apply_recipe_batch([recipe], x, rate, res)
    res = res or Resources()
    out_meta = None if meta is None else apply_recipe_meta(done, meta, rate, hop=hop, partner_meta=res.partner_meta,
                                                           rir_rooms=res.rir_rooms)
    return y[0], out_meta, done
