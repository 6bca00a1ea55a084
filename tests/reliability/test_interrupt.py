"""Ctrl-C on a training run: the run stops with one message saying where it resumes from, its
MLflow run is marked KILLED (it stayed RUNNING), and the checkpoints it wrote stay. (Ray Train
answers SIGINT by aborting the run and calling sys.exit, which ended the command silently.)
Ctrl-C on a dataset job says the same command resumes."""

import json
import signal
import subprocess

from mlflow import MlflowClient

from tests.reliability.cluster import ROOMTONE, Group, LocalCluster, staged, wait_for


def test_ctrl_c_stops_training_with_a_resume_hint_and_a_killed_mlflow_run(tmp_path, ray_cluster):
    from catalog import Catalog, CatalogConfig
    from pipelines.stages.synthetic_events import SyntheticEventsConfig, run_synthetic_events

    run_synthetic_events(SyntheticEventsConfig(per_class=2), Catalog(CatalogConfig(root=str(tmp_path / "home"))),
                         show_progress=False)
    with LocalCluster(workers=0, head_cpus=2) as cluster:
        env = {**cluster.env, "ROOMTONE_ROOT": str(tmp_path / "home")}
        run_dir = tmp_path / "home" / "runs" / "stopped"
        driver = cluster.driver([str(ROOMTONE), "pretrain", "ssast", "-d", "synthetic_events", "--steps", "400",
                                 "--set", "batch_size=4", "--set", "checkpoint_every=2", "--set", "clip_seconds=1.0",
                                 "--set", "run_name=stopped"], tmp_path / "pretrain.log", env)
        wait_for(lambda: any((run_dir / "checkpoints").glob("step-*.pt")), "first checkpoint", driver)
        driver.process.send_signal(signal.SIGINT)
        assert driver.process.wait(timeout=120) == 1
        log = driver.log.read_text()
        assert "error: training stopped was interrupted; its newest checkpoint is step-" in log, log[-3000:]
        assert f"it resumes from {run_dir}" in log
        assert list((run_dir / "checkpoints").glob("step-*.pt"))
        run_id = json.loads((run_dir / "mlflow-run.json").read_text())["run_id"]
        assert MlflowClient(f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}").get_run(run_id).info.status == "KILLED"


def test_ctrl_c_on_a_dataset_job_says_that_the_same_command_resumes(tmp_path, ray_cluster):
    """It ended on the progress bar, with no word of what was kept or how to go on."""
    import ray

    config = tmp_path / "rooms.yaml"
    config.write_text("room_x: [3, 4]\nroom_y: [3, 4]\nroom_z: [2.5, 3]\nrt60: [0.2, 0.3]\nsample_rate: 16000\n"
                      "max_shard_bytes: 100000\n")
    args = [str(ROOMTONE), "--root", str(tmp_path / "home"), "simulate", "rirs", "--config", str(config),
            "--num-rooms", "400", "--address", ray.get_runtime_context().gcs_address]
    with open(tmp_path / "rirs.log", "w") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    driver = Group("rirs", process, tmp_path / "rirs.log")
    wait_for(lambda: staged(tmp_path, "rirs"), "first RIR shard", driver)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    text = driver.log.read_text()
    assert "interrupted." in text and "resumes from the shards this one finished" in text, text[-3000:]
    assert "Traceback" not in text
