"""A driver killed in the middle of a job publishes nothing, and running the spec again
resumes from the shards it finished and publishes exactly once.

`roomtone run` drives a spec of SCENES scenes in about six shards on a one-node Ray cluster
started here (RAY_ADDRESS), so the killed driver starts no Ray processes of its own and the
fixture stops the cluster's. The driver's process group is SIGKILLed once a scenes shard is
staged and before all are.

Tally of one run: faults injected 1 (the driver, mid-job), snapshots published by the killed
run 0, runs survived 1 of 1 (the re-run resumes, keeping every shard file the killed run
finished), rows lost 0, duplicate rows 0, snapshots published 1.
"""

import pytest

from catalog import Catalog, CatalogConfig, RoomtoneError
from tests.reliability.cluster import SCENES, LocalCluster, planned, run_spec, scenes_spec, staged, succeeded, \
    wait_for

SPEC = scenes_spec()


@pytest.fixture
def cluster():
    with LocalCluster(workers=0, head_cpus=1) as c:
        yield c


def test_a_killed_driver_publishes_nothing_and_the_rerun_resumes_and_publishes_once(cluster, tmp_path):
    first = run_spec(cluster, SPEC, tmp_path)
    wait_for(lambda: staged(tmp_path, "scenes"), "scenes shard staged", first)
    first.kill()
    done = staged(tmp_path, "scenes")
    assert 0 < len(done) < planned(done)
    # Ray ends a dead driver's tasks; after that no shard of the first attempt can appear
    wait_for(lambda: not cluster.runs("write_task"), "end of the killed driver's tasks")
    kept = {name: (st.st_ino, st.st_mtime_ns) for name, st in staged(tmp_path, "scenes").items()}

    catalog = Catalog(CatalogConfig(root=str(tmp_path / "home")))
    assert not catalog.exists("scenes")
    assert catalog.query("SELECT * FROM roomtone_snapshots WHERE name = 'scenes'").num_rows == 0
    with pytest.raises(RoomtoneError, match="scenes"):
        catalog.query("SELECT count(*) FROM scenes")

    rerun = run_spec(cluster, SPEC, tmp_path)
    assert succeeded(rerun)
    assert f"· {SCENES} rows" in rerun.log.read_text()  # the bar counts the kept shards' rows too
    resumed = staged(tmp_path, "scenes")
    assert {name: (resumed[name].st_ino, resumed[name].st_mtime_ns) for name in kept} == kept  # skipped
    assert len(resumed) == planned(resumed)
    assert len(catalog.history("scenes")) == 1
    ids = catalog.query("SELECT id FROM scenes ORDER BY id").column("id").to_pylist()
    assert ids == [f"scene-{i:07d}" for i in range(SCENES)]  # every row, each once
