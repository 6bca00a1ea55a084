"""Losing a Ray worker node in the middle of a scenes job loses no row and duplicates none.

A head (no CPUs, so no task runs there) and two one-CPU worker nodes run as separate process
groups on this machine; `roomtone run` drives a spec of SCENES scenes in about six shards on
them. Once a scenes shard is staged and worker1 is executing a shard task, worker1 is
SIGKILLed whole. Its task is retried on the surviving node (``max_retries``), and the
published snapshot must equal, row for row and byte for byte, a run of the same spec on the
same cluster without the fault, published to another catalog root.

Tally of one run: faults injected 1 (a worker node with a shard task in flight), runs
survived 1 of 1, rows lost 0, duplicate rows 0, snapshots published 1.
"""

import hashlib

import pytest

from catalog import Catalog, CatalogConfig
from tests.reliability.cluster import SCENES, LocalCluster, planned, run_spec, scenes_spec, staged, succeeded, \
    wait_for

SPEC = scenes_spec()


@pytest.fixture
def cluster():
    with LocalCluster(workers=2) as c:
        yield c


def published_audio(root) -> tuple[int, list[tuple[str, str]]]:
    """(how many snapshots scenes has, [(id, sha256 of the audio bytes)] of the current one)."""
    catalog = Catalog(CatalogConfig(root=str(root / "home")))
    rows = catalog.arrow_dataset("scenes").to_table(columns=["id", "audio"]).to_pylist()
    return len(catalog.history("scenes")), sorted((r["id"], hashlib.sha256(r["audio"]["bytes"]).hexdigest())
                                                  for r in rows)


def test_a_worker_node_lost_mid_job_loses_and_duplicates_no_row(cluster, tmp_path):
    assert succeeded(run_spec(cluster, SPEC, tmp_path / "reference"))

    driver = run_spec(cluster, SPEC, tmp_path / "faulty")
    victim = cluster.node("worker1")
    wait_for(lambda: staged(tmp_path / "faulty", "scenes") and victim.runs("write_task"),
             "scenes shard staged while worker1 renders another", driver)
    victim.kill()
    done = staged(tmp_path / "faulty", "scenes")
    assert len(done) < planned(done)  # the survivor has work left
    assert succeeded(driver)

    snapshots, rows = published_audio(tmp_path / "faulty")
    assert snapshots == 1
    assert [i for i, _ in rows] == [f"scene-{i:07d}" for i in range(SCENES)]  # every row, each once
    assert rows == published_audio(tmp_path / "reference")[1]
