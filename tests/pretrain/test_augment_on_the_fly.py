"""Training-time augmentation in the data stream: recipes on each cropped wave, SELD labels
following the audio, SpecAugment, all keyed by (seed, item id, epoch)."""

import math

import numpy as np
import pytest
from pydantic import ValidationError

from pretrain.config import TrainConfig
from pretrain.data import InputSpec, _featurise

RATE = 24_000


def plane_wave(azimuth: float, elevation: float, seconds: float, seed: int) -> np.ndarray:
    """FOA (ACN order W, Y, Z, X; SN3D) of white noise arriving from one direction."""
    s = np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 0.1
    az, el = math.radians(azimuth), math.radians(elevation)
    gains = [1.0, math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)]
    return np.stack([g * s for g in gains]).astype(np.float32)


def labels_of(azimuth: float, elevation: float, frames: int) -> list[dict]:
    return [{"frame": f, "class_index": 0, "track": 0, "azimuth": azimuth, "elevation": elevation, "distance": 2.0}
            for f in range(frames)]


def test_rotated_seld_clips_carry_rotated_labels():
    """Each item draws its own rotation; the intensity-vector direction of its features must agree
    with the direction in its multi-ACCDOA reference, so the labels turned with the audio."""
    spec = InputSpec("seld", 1.0, RATE, 3, ("a", "b"), augment=({"name": "rotate"},))
    ids = [f"clip-{i}" for i in range(8)]
    batch = {"id": ids, "wave": np.stack([plane_wave(30.0, 20.0, 1.0, i) for i in range(8)]),
             "labels": [labels_of(30.0, 20.0, 10) for _ in ids]}
    out = _featurise(batch, spec, epoch=0)
    turned = 0
    for feats, ref in zip(out["fbank"], out["reference"]):
        y, z, x = (feats[4 + k].mean() for k in range(3))  # intensity channels hold the y, z, x components
        rx, ry, rz = ref[5, 0, :, 0]  # frame 5, track 0, class 0: activity times the unit direction
        assert math.degrees(math.atan2(y, x)) == pytest.approx(math.degrees(math.atan2(ry, rx)), abs=5)
        assert math.degrees(math.atan2(z, math.hypot(x, y))) == pytest.approx(
            math.degrees(math.atan2(rz, math.hypot(rx, ry))), abs=5)
        turned += abs(math.degrees(math.atan2(ry, rx)) - 30.0) > 1
    assert turned >= 4  # 16 patterns, one the identity: most of 8 items were turned


@pytest.mark.parametrize("family", ["tagging", "seld"])
def test_an_item_comes_out_the_same_whatever_shares_its_batch(family):
    """What a rank or task holds next to an item must not change it (worker-count independence)."""
    steps = ({"name": "gain"}, {"name": "noise"}, {"name": "shift"},
             {"name": "rotate"} if family == "seld" else {"name": "speed"})
    spec = InputSpec(family, 1.0, 16_000 if family == "tagging" else RATE, 5, ("a", "b"), augment=steps,
                     spec_augment=True)

    def batch(items: list[int]) -> dict:
        waves = [plane_wave(-60.0 + 20 * i, 0.0, 1.0, i) for i in items]
        if family == "tagging":
            return {"id": [f"c{i}" for i in items], "wave": np.stack([w[0, :16_000] for w in waves]),
                    "target": np.eye(2, dtype=np.float32)[[i % 2 for i in items]]}
        return {"id": [f"c{i}" for i in items], "wave": np.stack(waves),
                "labels": [labels_of(-60.0 + 20 * i, 0.0, 10) for i in items]}

    both, alone = _featurise(batch([0, 1, 2]), spec, epoch=4), _featurise(batch([1]), spec, epoch=4)
    for key in ("fbank", "target"):
        np.testing.assert_array_equal(both[key][1], alone[key][0])
    other_epoch = _featurise(batch([1]), spec, epoch=5)
    assert not np.array_equal(other_epoch["fbank"], alone["fbank"])  # a new epoch draws anew
    plain = _featurise(batch([1]), InputSpec(family, 1.0, spec.sample_rate, 5, ("a", "b")), epoch=4)
    assert not np.array_equal(plain["fbank"], alone["fbank"])


@pytest.mark.parametrize("settings, message", [
    (dict(augment=[{"name": "mix"}]), "make them offline with `roomtone augment`"),
    (dict(method="supervised", model="seld-tiny", augment=[{"name": "speed"}]), "rescale its frame labels"),
    (dict(augment=[{"name": "rotate"}]), "only SELD models read"),
    (dict(augment=[{"name": "gain", "p": 2}]), "augment[0]: gain: p must be a probability"),
    (dict(spec_augment=True), "spec_augment is for supervised runs"),
    (dict(method="supervised", model="seld-tiny", mixup_alpha=0.4), "mixup_alpha is for tagging runs"),
])
def test_augmentation_settings_are_checked_at_the_door(settings, message):
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("`", ".")):
        TrainConfig(**settings)


def test_tagging_runs_default_to_spec_augment():
    assert TrainConfig(method="supervised").spec_augment
    assert not TrainConfig(method="supervised", model="seld-tiny").spec_augment
    assert not TrainConfig(method="ssast").spec_augment


@pytest.mark.parametrize("seconds, kept", [((-0.9, -0.5), False), ((0.1, 0.3), True)])
def test_a_tagging_clip_shifted_out_of_its_crop_loses_its_label(seconds, kept):
    """A 0.2 s sound padded to a 1 s crop: advancing it by 0.5 s or more leaves silence, which
    must not keep the sound's class as its target (delaying it keeps both)."""
    rate, heard = 16_000, 3_200
    spec = InputSpec("tagging", 1.0, rate, 5, ("a", "b"), augment=({"name": "shift", "seconds": list(seconds)},))
    waves = np.zeros((6, rate), np.float32)
    waves[:, :heard] = np.random.default_rng(0).standard_normal((6, heard)) * 0.1
    batch = {"id": [f"c{i}" for i in range(6)], "wave": waves, "sounding": np.full(6, heard),
             "target": np.eye(2, dtype=np.float32)[[i % 2 for i in range(6)]]}
    out = _featurise(batch, spec, epoch=0)
    assert "sounding" not in out
    assert (out["target"].sum(axis=1) == (1 if kept else 0)).all()


def test_a_tagging_crop_records_how_much_of_it_holds_the_clip():
    from pretrain.data import crop_row
    from catalog.audio import encode_flac

    spec = InputSpec("tagging", 1.0, 16_000, 5, ("a", "b"))
    short = {"id": "s", "label": "a", "audio": {"bytes": encode_flac(np.full((4_000, 1), 0.1, np.float32), 16_000)}}
    long = {"id": "l", "label": "b", "audio": {"bytes": encode_flac(np.full((40_000, 1), 0.1, np.float32), 16_000)}}
    assert crop_row(short, spec, 0)["sounding"] == 4_000
    assert crop_row(long, spec, 0)["sounding"] == 16_000
