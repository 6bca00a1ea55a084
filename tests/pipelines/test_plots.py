"""The scene plot draws what the labels say, where they say it."""

import matplotlib.pyplot as plt
import numpy as np

from catalog import audio_cell, encode_flac
from pipelines.plots import scene_figure


def test_scene_figure_draws_every_label_frame_at_its_time_class_track_and_direction():
    labels = [{"frame": f, "class_index": 1, "track": 0, "azimuth": 10.0 + f, "elevation": -5.0, "distance": 2.0}
              for f in range(3, 8)]
    labels += [{"frame": 5, "class_index": 1, "track": 1, "azimuth": -90.0, "elevation": 30.0, "distance": 1.5},
               {"frame": 12, "class_index": 0, "track": 0, "azimuth": 170.0, "elevation": 0.0, "distance": 3.0}]
    audio = np.random.default_rng(0).normal(0, 0.1, (24_000 * 2, 4))
    row = {"id": "s1", "format": "foa", "duration": 2.0, "caption": "a dog barks", "labels": labels,
           "audio": audio_cell(encode_flac(audio, 24_000), "s1.flac"), "room_dims": [5.0, 4.0, 3.0], "rt60": 0.4}
    fig = scene_figure(row, ["bell", "dog"], 0.1)
    spec, activity, azimuth, elevation, distance = fig.axes[:5]
    bars = {(round(c.get_paths()[0].vertices[:, 1].min(), 2)): len(c.get_paths()) for c in activity.collections}
    assert bars == {0.9: 5, 1.15: 1, -0.1: 1}  # dog track 0 (5 frames), dog track 1 higher, bell
    points = np.concatenate([c.get_offsets() for c in azimuth.collections])
    assert sorted(map(tuple, points.round(2))) == sorted(
        [(round(l_["frame"] * 0.1 + 0.05, 2), l_["azimuth"]) for l_ in labels])
    assert np.concatenate([c.get_offsets() for c in elevation.collections])[:, 1].max() == 30.0
    assert len(np.concatenate([c.get_offsets() for c in distance.collections])) == len(labels)
    assert "a dog barks" in fig._suptitle.get_text() and "RT60 0.40 s" in fig._suptitle.get_text()
    plt.close(fig)
