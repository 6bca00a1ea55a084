"""The README's two commands, exercised as written."""

import os
import re
import subprocess

from tests.helpers import REPO_ROOT


def readme_commands() -> dict[str, str]:
    text = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"## The two commands.*?```bash\n(.*?)```", text, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    return {"demo": next(c for c in commands if " demo" in c), "test": next(c for c in commands if " test" in c)}


def test_ci_runs_the_readme_test_command():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert readme_commands()["test"] in [line.strip() for line in ci.splitlines()]


def test_demo_command_smallest_setting(tmp_path):
    command = readme_commands()["demo"] + " --quick"
    env = {**os.environ, "ROOMTONE_ROOT": str(tmp_path / "home"), "ROOMTONE_RAY_DASHBOARD": "0"}
    proc = subprocess.run(command, shell=True, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for stage, name in (("events", "events"), ("rirs", "rirs"), ("scenes", "scenes"), ("mixes", "mixes"),
                        ("qa", "qa")):
        assert f"{stage}: {name}@v1:" in proc.stdout
    assert "SQL: scenes" in proc.stdout and "SQL: QA tuples per family" in proc.stdout
    assert '"instruction"' in proc.stdout and "MLflow: mlflow ui --backend-store-uri sqlite:///" in proc.stdout
    home = tmp_path / "home"
    assert (home / "catalog.db").exists() and (home / "mlflow.db").exists()
    assert (home / "plots" / "rir.png").stat().st_size > 20_000
    assert {p.name for p in (home / "reports").glob("*.png")} == {"rirs-v1.png", "scenes-v1.png", "qa-v1.png"}
    assert len(list((home / "dcase_scenes" / "metadata_dev").glob("*/*.csv"))) == 2
    assert (home / "qa" / "ltu_train.json").stat().st_size > 0
