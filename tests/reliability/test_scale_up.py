"""A cluster whose autoscaler has removed its idle workers (KubeRay's CPU and GPU groups scale to
zero) still takes jobs: a job short of CPUs asks the autoscaler for them and waits until they
join, instead of refusing because the cluster has none at that moment. Here the head has no CPUs
and the test starts the worker node an autoscaler would start."""

import json
import sys
import time

from tests.reliability.cluster import LocalCluster

DRIVER = """
import json
from catalog.cluster import connect
from catalog.errors import RoomtoneError
from pretrain.config import TrainConfig
from pretrain.train import _check_resources

try:
    print(json.dumps({"use_gpu": _check_resources(TrainConfig(cpus_per_worker=1, data_cpus=1), connect())}))
except RoomtoneError as err:
    print(json.dumps({"problem": err.problem, "fix": err.fix}))
"""


def _result(driver, timeout: float = 120) -> dict:
    driver.process.wait(timeout=timeout)
    return json.loads(driver.log.read_text().strip().splitlines()[-1])


def test_training_waits_for_the_workers_an_idle_cluster_adds(tmp_path):
    with LocalCluster(workers=0, worker_cpus=2) as cluster:
        start = time.monotonic()
        nobody = cluster.driver([sys.executable, "-c", DRIVER], tmp_path / "nobody.log",
                                {**cluster.env, "ROOMTONE_SCALE_UP_TIMEOUT_S": "3"})
        refused = _result(nobody)
        assert "need more than the cluster's 0 CPUs" in refused["problem"]
        assert "ROOMTONE_SCALE_UP_TIMEOUT_S" in refused["fix"]
        assert time.monotonic() - start < 60  # the wait ends: no job hangs on a cluster that cannot grow

        waiting = cluster.driver([sys.executable, "-c", DRIVER], tmp_path / "waiting.log")
        while "asking its autoscaler" not in waiting.log.read_text():
            assert waiting.process.poll() is None, waiting.log.read_text()
            time.sleep(0.2)
        cluster._start_all(["worker1"])  # what the autoscaler does on the request
        assert _result(waiting) == {"use_gpu": False}
