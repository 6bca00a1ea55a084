"""Fixtures shared by the pretrain tests."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest single-threaded; two threads on a shared 2-core box thrash."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, ray_cluster):
    """FOA scenes of sonic-pi events in two simulated rooms (the scenes stage, as the demo makes them)."""
    from pipelines.stages.rirs import RirsConfig, run_rirs
    from pipelines.stages.scenes import ScenesConfig, run_scenes
    from tests.pretrain.test_data import ingest_sonic_pi

    catalog = ingest_sonic_pi(tmp_path_factory.mktemp("seld"), per_label=3, labels=3, max_seconds=1.5)
    run_rirs(RirsConfig(name="foa_rooms", array="foa", num_rooms=2, sources_per_room=1, room_x=(4.0, 6.0),
                        room_y=(4.0, 6.0), room_z=(2.5, 3.5), rt60=(0.2, 0.4), test_fraction=0.0), catalog,
             show_progress=False)
    run_scenes(ScenesConfig(rirs="foa_rooms", num_scenes=6, clip_seconds=4.0, max_event_seconds=1.5,
                            rir_seconds=0.25, test_fraction=0.0, events_per_minute=60.0, polyphony=1), catalog,
               show_progress=False)
    return catalog
