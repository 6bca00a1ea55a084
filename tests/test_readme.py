"""The README's two commands, exercised as written."""

import json
import re

from tests.helpers import REPO_ROOT, readme_commands


def test_ci_runs_the_readme_test_command():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert readme_commands()["test"] in [line.strip() for line in ci.splitlines()]


def test_demo_command_smallest_setting(demo_run):
    proc, home = demo_run.proc, demo_run.home
    assert proc.returncode == 0, proc.stderr[-3000:]
    for stage, name in (("events", "events"), ("rirs", "rirs"), ("scenes", "scenes"), ("mixes", "mixes"),
                        ("qa", "qa")):
        assert f"{stage}: {name}@v1:" in proc.stdout
    assert "SQL: scenes" in proc.stdout and "SQL: QA tuples per family" in proc.stdout
    assert '"instruction"' in proc.stdout and "MLflow: mlflow ui --backend-store-uri sqlite:///" in proc.stdout
    assert (home / "catalog.db").exists() and (home / "mlflow.db").exists()
    assert (home / "plots" / "rir.png").stat().st_size > 20_000 and (home / "plots" / "scene.png").stat().st_size > 50_000
    assert {p.name for p in (home / "reports").glob("*.png")} == {"rirs-v1.png", "scenes-v1.png", "qa-v1.png"}
    assert len(list((home / "dcase_scenes" / "metadata_dev").glob("*/*.csv"))) == 2
    ltu = json.loads((home / "qa" / "ltu_train.json").read_text())
    assert ltu and all((home / "qa" / r["audio_id"]).is_file() for r in ltu)  # the DCASE export's clips


def test_demo_console_shows_progress_not_library_chatter(demo_run):
    """Training and the probe show progress bars that reach their ends; Ray Train's and MLflow's own
    log lines (resource requests, watcher errors, store migrations, registry notes) and pyiceberg's
    per-file metrics warnings stay out."""
    out = demo_run.proc.stdout + demo_run.proc.stderr
    assert re.search(r"training ssast-tiny .*?(\d+)/\1 steps · loss \d", out), out[-3000:]
    assert re.search(r"embedding test .*?(\d+)/\1 clips", out), out[-3000:]  # the probe's bars
    for chatter in ("Requesting resources", "core_worker", "PreemptionWatcher", "execution finished",
                    "Progress bars disabled", "Creating initial MLflow database", "Successfully registered model",
                    "Inferred schema contains integer", "Token authentication is enabled",
                    "PyArrow statistics missing"):
        assert chatter not in out, chatter
