"""synthesize_scene end to end, captions and DCASE rows."""

from __future__ import annotations

import numpy as np
import pytest

from simulation import Room, foa, tetra_mic
from simulation.scenes.labels import default_phrase
from simulation.scenes import (FrameLabel, LibraryItem, PlanConfig, PlannedEvent, ScenePlan, caption,
                               direction_words, frame_labels, synthesize_scene, to_dcase_rows)

FS = 16000
LIBRARY = [LibraryItem("dog1", 0, "dog", 1.2), LibraryItem("bell1", 1, "bell", 2.0)]
PHRASES = {"dog": "a dog barks", "bell": "a bell rings"}


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {item.id: rng.standard_normal(int(item.duration * FS)) for item in LIBRARY}


@pytest.mark.parametrize("make_array", [foa, tetra_mic], ids=["foa", "mic"])
def test_synthesize_scene_reverberant(make_array) -> None:
    room = Room.from_rt60((6.0, 5.0, 3.0), 0.5)
    array = make_array((3.0, 2.4, 1.5))
    config = PlanConfig(duration=5.0, events_per_minute=48.0)
    scene = synthesize_scene(room, array, 5, LIBRARY, _signals(), FS, config=config, rir_duration=0.15,
                             phrases=PHRASES)
    assert scene.audio.shape == (4, 5 * FS) and scene.audio.dtype == np.float32
    assert np.isfinite(scene.audio).all() and np.abs(scene.audio).max() == pytest.approx(0.5, rel=1e-5)
    assert scene.gain > 0 and len(scene.plan.events) == 4
    assert scene.labels == frame_labels(scene.plan) and scene.labels
    assert scene.plan.center == array.center
    assert "medium-sized moderately reverberant room" in scene.caption
    assert ("dog barks" in scene.caption) or ("bell rings" in scene.caption)
    again = synthesize_scene(room, array, 5, LIBRARY, _signals(), FS, config=config, rir_duration=0.15)
    assert again.plan == scene.plan and np.array_equal(again.audio, scene.audio)


def test_synthesize_scene_needs_every_signal() -> None:
    room = Room.from_rt60((6.0, 5.0, 3.0), 0.5)
    with pytest.raises(ValueError, match="bell1"):
        synthesize_scene(room, foa((3.0, 2.4, 1.5)), 0, LIBRARY, {"dog1": np.ones(10)}, FS)


def test_caption_template() -> None:
    events = (PlannedEvent("dog1", 0, "dog", 0, 0.0, 1.0, 0.0, 90.0, 0.0, 2.0),
              PlannedEvent("bell1", 1, "bell", 1, 0.5, 2.0, 0.0, 180.0, 0.0, 2.0),
              PlannedEvent("x", 2, "car_horn", 2, 1.0, 3.0, 0.0, 0.0, 50.0, 2.0, speed=60.0))
    plan = ScenePlan(0, 4.0, 3, 3, 0.1, (5.0, 5.0, 1.5), None, 0, events)
    big = Room.from_rt60((12.0, 10.0, 4.0), 1.2)
    assert caption(plan, big, PHRASES) == ("a dog barks to the left while a bell rings behind, then a car horn is heard "
                                           "above, in front, moving towards the left, in a large very reverberant room")
    apart = (events[0], PlannedEvent("bell1", 1, "bell", 1, 1.5, 2.0, 0.0, 180.0, 0.0, 2.0))  # starts after the dog
    assert caption(ScenePlan(0, 4.0, 3, 3, 0.1, (5.0, 5.0, 1.5), None, 0, apart), big, PHRASES) == \
        "a dog barks to the left, then a bell rings behind, in a large very reverberant room"   # not "while"
    late_horn = (*events[:2], PlannedEvent("x", 2, "car_horn", 2, 3.0, 3.5, 0.0, 0.0, 0.0, 2.0))  # after the dog
    assert caption(ScenePlan(0, 4.0, 3, 3, 0.1, (5.0, 5.0, 1.5), None, 0, late_horn), big, PHRASES).startswith(
        "a dog barks to the left while a bell rings behind, then a car horn is heard in front")
    # three dog barks before the bell: the caption names the bell (it named three barks)
    barks = tuple(PlannedEvent("dog1", 0, "dog", t, 0.2 * t, 1.0, 0.0, 90.0 * t, 0.0, 2.0) for t in range(3))
    bell = PlannedEvent("bell1", 1, "bell", 0, 1.5, 2.0, 0.0, 180.0, 0.0, 2.0)
    assert caption(ScenePlan(0, 4.0, 3, 3, 0.1, (5.0, 5.0, 1.5), None, 0, (*barks, bell)), big, PHRASES) == \
        "a dog barks in front while a dog barks to the left, then a bell rings behind, in a large very reverberant room"
    # a clause with a comma before "and" gets a serial comma: not "a car horn is heard ..., moving and a bell rings"
    horn_then_bell = (events[0], PlannedEvent("x", 2, "car_horn", 2, 1.5, 2.5, 0.0, 60.0, 0.0, 2.0, speed=30.0),
                      PlannedEvent("bell1", 1, "bell", 1, 1.6, 2.0, 0.0, 180.0, 0.0, 2.0))
    assert caption(ScenePlan(0, 4.0, 3, 3, 0.1, (5.0, 5.0, 1.5), None, 0, horn_then_bell), big, PHRASES) == \
        "a dog barks to the left, then a car horn is heard to the left, moving, and a bell rings behind, in a large " \
        "very reverberant room"
    # the RT60 the row records (measured on the room's RIRs) decides the words, not the Sabine estimate
    assert caption(plan, big, PHRASES, rt60=0.5).endswith("in a large moderately reverberant room")
    small = Room(dims=(3.0, 3.0, 2.5), beta=(0.0,) * 6)
    assert caption(ScenePlan(0, 4.0, 3, 3, 0.1, (1.5, 1.5, 1.2), None, 0, events[:1]), small) == \
        "a dog is heard to the left, in a small anechoic space"
    assert [default_phrase(n) for n in ("siren", "footsteps", "clicking", "alarm_clock", "glass", "Ambient music")] == \
        ["a siren is heard", "footsteps are heard", "clicking is heard", "an alarm clock is heard", "a glass is heard",
         "ambient music is heard"]  # it read "an Ambient music is heard"


def test_captions_write_audioset_names_as_prose_keeping_proper_nouns_and_acronyms():
    """AudioSet names are sentence case ('Bass drum'); a caption writes them mid-sentence in lower
    case (AudioCaps: 'a bass drum'), except proper nouns, brands and acronyms."""
    assert [default_phrase(n) for n in ("Bass drum", "Electronic music", "French horn", "Hammond organ",
                                        "UK garage", "Christmas music", "Bow-wow", "Middle Eastern music")] == \
        ["a bass drum is heard", "electronic music is heard", "a French horn is heard", "a Hammond organ is heard",
         "UK garage is heard", "Christmas music is heard", "a bow-wow is heard", "Middle Eastern music is heard"]
    # where AudioSet's first synonym misreads, its heads are plural or uncountable, or it is an acronym
    assert [default_phrase(n) for n in ("Walk, footsteps", "Canidae, dogs, wolves", "Inside, small room", "Bus",
                                        "Cattle, bovinae", "Heavy metal", "Rain on surface", "MP3", "A capella")] == \
        ["footsteps are heard", "dogs are heard", "small-room ambience is heard", "a bus is heard",
         "cattle are heard", "heavy metal is heard", "rain on surface is heard", "an MP3 is heard",
         "a cappella singing is heard"]  # "a walk", "a canidae", "an inside", "bus are", "a heavy metal", "a MP3"
    assert [direction_words(a, 0.0) for a in (0.0, 60.0, -179.0, -60.0)] == \
        ["in front", "to the left", "behind", "to the right"]
    assert direction_words(-90.0, -45.0) == "below and to the right"


def test_dcase_rows_use_integer_degrees_and_centimetres() -> None:
    rows = to_dcase_rows([FrameLabel(3, 1, 0, 179.7, -10.4, 2.6761), FrameLabel(4, 1, 0, -30.2, 89.6, 1.0)])
    assert rows == [(3, 1, 0, -180, -10, 268), (4, 1, 0, -30, 90, 100)]
    assert FrameLabel.from_dict(FrameLabel(1, 2, 0, 3.0, 4.0, 5.0).to_dict()) == FrameLabel(1, 2, 0, 3.0, 4.0, 5.0)
