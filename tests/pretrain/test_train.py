"""Ray Train on CPU: DDP equals one worker, resume and a killed worker replay the curve, NaN stops cleanly."""

import os
import signal
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from catalog import Location, NotFoundError, RoomtoneError
from pretrain.config import TrainConfig
from pretrain.train import build_model, load_latest, run_training
from tests.pretrain.test_data import ingest_sonic_pi

TINY = dict(clip_seconds=0.64, batch_size=8, warmup_steps=1, cpus_per_worker=0.5, max_failures=0,
            log_checkpoints="none", model_overrides={"dim": 64, "depth": 1, "heads": 2})


@pytest.fixture(scope="module")
def events(tmp_path_factory, ray_cluster):
    return ingest_sonic_pi(tmp_path_factory.mktemp("train"), per_label=4, labels=2, max_seconds=3.0)


def losses(result) -> list[float]:
    """The last logged loss of every step (a resumed run logs the replayed steps again)."""
    by_step = {m.step: m.value for m in MlflowClient(result.tracking_uri).get_metric_history(result.mlflow_run_id,
                                                                                              "loss")}
    return [by_step[s] for s in sorted(by_step)]


def test_two_workers_give_the_loss_of_one_worker_with_the_same_global_batch(events):
    # 8 rows in one shard, global batch 8: each step sees every row, split 8 / 4+4 over the ranks;
    # on-the-fly recipes and SpecAugment (on by default for tagging) draw per item, so they must agree too
    base = dict(TINY, method="supervised", model="tagging-tiny", dataset="events", steps=3, checkpoint_every=3,
                augment=[{"name": "gain", "p": 0.5}, {"name": "noise", "p": 0.5}, {"name": "shift"}])
    one = run_training(TrainConfig(**base, num_workers=1, run_name="ddp1"), events)
    two = run_training(TrainConfig(**base, num_workers=2, run_name="ddp2"), events)
    assert len(losses(one)) == 3 and losses(one)[0] != losses(one)[-1]
    assert losses(two) == pytest.approx(losses(one), rel=1e-4)


def test_mixup_and_on_the_fly_speed_train_and_are_recorded(events):
    cfg = TrainConfig(**TINY, method="supervised", model="tagging-tiny", dataset="events", steps=2,
                      checkpoint_every=2, mixup_alpha=0.4, augment=[{"name": "speed"}], run_name="mixup")
    result = run_training(cfg, events)
    assert len(losses(result)) == 2 and all(0 < v < 10 for v in losses(result))
    params = MlflowClient(result.tracking_uri).get_run(result.mlflow_run_id).data.params
    assert params["mixup_alpha"] == "0.4" and params["spec_augment"] == "true" and "speed" in params["augment"]


def test_resume_and_a_killed_worker_reproduce_the_uninterrupted_curve(events, tmp_path):
    base = dict(TINY, method="ssast", model="ssast-tiny", dataset="events", steps=4, checkpoint_every=2)
    straight = run_training(TrainConfig(**base, run_name="straight"), events)

    def stop_at_step_3(step, micro, rank, batch):
        if step == 2:
            raise RuntimeError("interrupted")
        return batch

    cfg = TrainConfig(**base, run_name="resumed")  # max_failures=0: the interruption ends the run
    with pytest.raises(RoomtoneError, match="interrupted.*resumes from the newest checkpoint"):
        run_training(cfg, events, hook=stop_at_step_3)

    flag = tmp_path / "killed"

    def kill_once_at_step_4(step, micro, rank, batch):
        if step == 3 and not flag.exists():
            flag.touch()
            os.kill(os.getpid(), signal.SIGKILL)  # the worker process dies for real, step 3 not checkpointed
        return batch

    # the re-run resumes from step 2; its worker is killed in step 4 and Ray Train restarts it from step 2
    resumed = run_training(cfg.model_copy(update={"max_failures": 1}), events, hook=kill_once_at_step_4)
    assert flag.exists() and resumed.steps == 4
    assert losses(resumed) == pytest.approx(losses(straight), rel=1e-5)

    newest = Path(resumed.checkpoint)
    assert newest.name == "step-00000004.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a write cut short
    model = build_model(cfg, ())
    ckpt, loc = load_latest(Location.parse(resumed.run_dir), model, cfg.model)  # what a re-run resumes from
    assert loc.name == "step-00000002.pt" and ckpt["step"] == 2


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(events):
    def poison_step_2(step, micro, rank, batch):
        if step == 1 and micro == 1:  # the step's second micro-batch: the step is read once, after both
            batch["fbank"] = batch["fbank"] * float("nan")
        return batch

    cfg = TrainConfig(**TINY, method="ssast", model="ssast-tiny", dataset="events", steps=4, checkpoint_every=1,
                      grad_accum=2, run_name="nan")
    with pytest.raises(RoomtoneError, match=r"NaN/inf at step 2 \(rank 0, micro-batch 1, items .*\.flac.*"
                                            r"last good checkpoint is .*step-00000001\.pt") as err:
        run_training(cfg, events, hook=poison_step_2)
    run_dir = Path(events.config.root) / "runs" / "nan" / "checkpoints"
    assert sorted(p.name for p in run_dir.iterdir()) == ["step-00000001.pt"]
    assert "lower lr" in err.value.fix


def test_a_short_run_gets_a_short_warm_up_and_a_given_one_is_checked():
    """`--steps 5` failed on a warm-up of 20 steps that the user never set."""
    assert TrainConfig(steps=5).warmup_steps == 0 and TrainConfig(steps=50).warmup_steps == 20
    assert TrainConfig(steps=20).warmup_steps == 2
    with pytest.raises(ValueError, match="warmup_steps=20 must be below steps=5"):
        TrainConfig(steps=5, warmup_steps=20)


def test_bad_inputs_fail_before_training_starts(events):
    from pretrain.checkpoints import save_checkpoint
    from pretrain.models import create_model

    with pytest.raises(RoomtoneError, match="no column 'labels', 'format', which seld training needs"):
        run_training(TrainConfig(method="supervised", model="seld-tiny", dataset="events"), events)
    with pytest.raises(NotFoundError, match="events@v7 does not exist"):
        run_training(TrainConfig(dataset="events@v7"), events)
    with pytest.raises(ValueError, match="does not fit method 'ssast'"):
        TrainConfig(method="ssast", model="tagging-tiny")
    small = create_model("ssast-tiny")
    run_dir = Path(events.config.root) / "runs" / "sizes"
    save_checkpoint(str(run_dir / "checkpoints" / "step-00000005.pt"), small, None, 5,
                    {"config": {}, "classes": []})
    with pytest.raises(RoomtoneError, match="step-00000005.pt does not fit model 'ssast-small'"):
        run_training(TrainConfig(model="ssast-small", dataset="events", run_name="sizes"), events)
    assert not (run_dir / "mlflow-run.json").exists()  # refused before the MLflow run was opened
    # A run_name given again with other settings or another snapshot: continuing those weights on another
    # task under the old MLflow run was silent
    held = TrainConfig(dataset="events", run_name="held")
    save_checkpoint(str(run_dir.parent / "held" / "checkpoints" / "step-00000005.pt"), create_model("ssast-tiny"), None,
                    5, {"config": held.model_dump(mode="json"), "classes": [], "source": "events@1"})
    with pytest.raises(RoomtoneError, match=r"other settings \(lr: 0.0005 -> 0.01; dataset snapshot: events@1 -> "
                                            r"events@\d+\)") as err:
        run_training(held.model_copy(update={"lr": 0.01, "steps": 400}), events)  # steps alone would resume
    assert "give another run_name" in err.value.fix
    # More workers than the cluster holds: refused, and no empty run folder is left behind to resume from
    with pytest.raises(RoomtoneError, match="need more than the cluster's 2 CPUs"):
        run_training(TrainConfig(dataset="events", run_name="crowded", num_workers=4, cpus_per_worker=1), events)
    assert not (run_dir.parent / "crowded").exists()
