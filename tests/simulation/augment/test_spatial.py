"""The 16 ACS patterns: rotated audio of a simulated point source arrives where the updated label says."""

import numpy as np
import pytest
import torch

from simulation import Room, direct_path_labels, foa, simulate, tetra_mic
from simulation.augment import NUM_PATTERNS, Recipe, Rotate, apply_recipe, pattern_angles, rotate_caption, \
    valid_patterns
from simulation.scenes import direction_words

FS = 24_000
CENTER = np.array([3.0, 3.0, 2.0])
ROOM = Room((6.0, 6.0, 4.0), (0.0,) * 6)  # anechoic: only the direct path


def _source(az: float, el: float, dist: float = 1.5) -> np.ndarray:
    a, e = np.radians(az), np.radians(el)
    return CENTER + dist * np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])


def _record(array, az: float, el: float) -> np.ndarray:
    rir = simulate(ROOM, [_source(az, el)], array, fs=FS, nsample=2048, dtype=torch.float64)[0, 0].numpy()
    noise = np.random.default_rng(0).standard_normal(FS // 2)
    return np.stack([np.convolve(noise, h)[:FS // 2] for h in rir])


def _intensity_doa(wyzx: np.ndarray) -> tuple[float, float]:
    w, y, z, x = wyzx
    i = np.array([np.mean(w * x), np.mean(w * y), np.mean(w * z)])
    return float(np.degrees(np.arctan2(i[1], i[0]))), float(np.degrees(np.arctan2(i[2], np.hypot(i[0], i[1]))))


def _angle(az1, el1, az2, el2) -> float:
    a = [np.array([np.cos(np.radians(e)) * np.cos(np.radians(z)), np.cos(np.radians(e)) * np.sin(np.radians(z)),
                   np.sin(np.radians(e))]) for z, e in ((az1, el1), (az2, el2))]
    return float(np.degrees(np.arccos(np.clip(a[0] @ a[1], -1, 1))))


def _rotate(audio: np.ndarray, pattern: int, fmt: str, az: float, el: float):
    meta = {"duration": 0.5, "events": [{"azimuth": az, "elevation": el, "speed": 0.0, "onset": 0.0, "offset": 0.5}],
            "labels": [{"frame": 0, "track": 0, "azimuth": az, "elevation": el}]}
    out, meta, _ = apply_recipe(Recipe("x", ("x",), 0, 0, (Rotate(pattern, fmt),)), audio, FS, meta)
    assert meta["labels"][0]["azimuth"] == meta["events"][0]["azimuth"]
    return out.numpy(), meta["events"][0]["azimuth"], meta["events"][0]["elevation"]


@pytest.mark.parametrize("pattern", range(NUM_PATTERNS))
def test_foa_rotation_moves_the_measured_doa_to_the_label(pattern):
    az, el = 27.0, 21.0
    audio = _record(foa(CENTER), az, el)
    assert _angle(*_intensity_doa(audio), az, el) < 2.0  # the measurement itself is sound
    out, new_az, new_el = _rotate(audio, pattern, "foa", az, el)
    assert _angle(*_intensity_doa(out), new_az, new_el) < 2.0
    if pattern:
        assert _angle(new_az, new_el, az, el) > 20.0  # the label moved


@pytest.mark.parametrize("pattern", valid_patterns("mic"))
def test_mic_rotation_equals_recording_the_source_at_the_labelled_direction(pattern):
    az, el = -62.0, 14.0
    out, new_az, new_el = _rotate(_record(tetra_mic(CENTER), az, el), pattern, "mic", az, el)
    expect = _record(tetra_mic(CENTER), new_az, new_el)
    assert np.abs(out - expect).max() < 1e-6 * np.abs(expect).max()
    got_az, got_el, _ = direct_path_labels(_source(new_az, new_el)[None], CENTER[None])
    assert _angle(float(got_az[0, 0]), float(got_el[0, 0]), new_az, new_el) < 1e-6


def test_mic_refuses_patterns_the_tetrahedron_lacks():
    assert len(valid_patterns("mic")) == 8
    bad = sorted(set(range(NUM_PATTERNS)) - set(valid_patterns("mic")))
    with pytest.raises(ValueError, match="does not map the tetrahedral MIC array onto itself"):
        apply_recipe(Recipe("x", ("x",), 0, 0, (Rotate(bad[0], "mic"),)), np.zeros((4, 10)), FS)


def test_patterns_are_distinct_and_include_the_identity():
    az, el = np.array([10.0, 75.0]), np.array([20.0, -5.0])
    images = {tuple(np.round(np.concatenate(pattern_angles(p, az, el)), 6)) for p in range(NUM_PATTERNS)}
    assert len(images) == NUM_PATTERNS
    assert pattern_angles(0, az, el)[0].tolist() == az.tolist()


@pytest.mark.parametrize("pattern", range(NUM_PATTERNS))
def test_caption_words_follow_the_rotation(pattern):
    rng = np.random.default_rng(pattern)
    for az, el in zip(rng.uniform(-180, 180, 50), rng.uniform(-80, 80, 50)):
        new_az, new_el = pattern_angles(pattern, az, el)
        caption = f"a dog is heard {direction_words(az, el)}, in a small dry room"
        assert rotate_caption(caption, pattern) == \
            f"a dog is heard {direction_words(float(new_az), float(new_el))}, in a small dry room"


@pytest.mark.parametrize("pattern", range(NUM_PATTERNS))
def test_a_mixture_caption_on_a_sector_edge_is_mapped_right_or_dropped(pattern):
    """A mixture's caption cannot be redone, only its words mapped; sectors are half-open, so a
    mirror sent a source at 45 deg (left) to 135 deg (behind) while the mapped word stayed 'left'."""
    from simulation.augment.metadata import rotate_meta

    for az in (45.0, 135.0, -45.0, -135.0, 30.0, -100.0):
        meta = {"duration": 2.0, "caption": f"a dog is heard {direction_words(az, 0.0)} and a bell rings",
                "events": [{"event_id": "d", "class_name": "dog", "track": 0, "onset": 0.0, "offset": 1.0,
                            "azimuth": az, "elevation": 0.0, "distance": 1.0, "speed": 0.0}]}
        turned = rotate_meta(meta, pattern)
        new_az = turned["events"][0]["azimuth"]
        if turned["caption"] is not None:
            assert turned["caption"] == f"a dog is heard {direction_words(new_az, 0.0)} and a bell rings", az
        assert turned["caption"] is not None or az % 90 == 45, az   # off the edges the words always map


def test_a_sped_up_mixture_rewords_both_parents_room_phrases():
    from simulation.augment.metadata import speed_meta

    meta = {"duration": 4.0, "rt60": 0.25, "caption": "a dog barks to the left, in a small dry room and a bell "
                                                     "rings in front, in a small dry room"}
    assert speed_meta(meta, 0.5, 0.1)["caption"] == ("a dog barks to the left, in a small moderately reverberant "
                                                     "room and a bell rings in front, in a small moderately "
                                                     "reverberant room")


def test_a_sped_up_mixture_of_two_rooms_drops_the_caption_whose_room_words_no_longer_hold():
    from simulation.augment.metadata import speed_meta

    meta = {"duration": 4.0, "rt60": None, "caption": "a dog barks to the left, in a small very reverberant room and "
                                                     "a bell rings in front, in a large dry room"}
    assert speed_meta(meta, 1.25, 0.1)["caption"] is None
    assert speed_meta({**meta, "caption": "dog and bell"}, 1.25, 0.1)["caption"] == "dog and bell"   # no room words
