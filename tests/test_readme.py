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
    for name in ("events", "rirs", "scenes"):
        assert f"published {name}@v1" in proc.stdout
    assert "SQL: rooms" in proc.stdout and "SQL: scenes" in proc.stdout
    assert (tmp_path / "home" / "catalog.db").exists()
    assert (tmp_path / "home" / "plots" / "rir.png").stat().st_size > 20_000
    assert len(list((tmp_path / "home" / "dcase" / "metadata_dev").glob("*/*.csv"))) == 2
