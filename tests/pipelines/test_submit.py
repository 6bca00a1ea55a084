"""`roomtone submit` against a real Ray head (started here, dashboard and metrics on 127.0.0.1)."""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from catalog import Catalog, CatalogConfig, RoomtoneError
from pipelines import jobs
from pipelines.spec import plan_spec
from tests.conftest import free_port
from tests.pipelines.test_spec import TINY

SLOT = datetime(2026, 1, 2, 3, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A Ray head as its own process group, like `ray start` on a cluster's head node."""
    gcs, dashboard, metrics_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the job's `python` is ours
    log = open(tmp_path_factory.mktemp("head") / "head.log", "w")
    head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", f"--port={gcs}",
                             "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
                             f"--metrics-export-port={metrics_port}", "--num-cpus=2", "--disable-usage-stats",
                             # the session's own cluster already holds the default agent port
                             f"--dashboard-agent-listen-port={free_port()}",
                             "--block"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    deadline = time.monotonic() + 120
    while True:
        try:
            jobs.client(address).list_jobs()
            break
        except RoomtoneError:
            if time.monotonic() > deadline or head.poll() is not None:
                os.killpg(head.pid, signal.SIGKILL)
                pytest.fail(f"the Ray head did not come up; see {log.name}")
            time.sleep(1)
    yield address, f"http://127.0.0.1:{metrics_port}/metrics"
    os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(5)  # a graceful `ray start --block` exit takes ~30 s; the group's kill is as clean here
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()
    current = Path("/tmp/ray/ray_current_cluster")
    if current.is_file() and current.read_text().strip().endswith(f":{gcs}"):
        current.unlink()  # nothing should try to join the stopped head


def scraped_totals(url: str, metric: str) -> dict[tuple[str, str], float]:
    """Sum of a counter over Ray's per-worker series, by (stage, run)."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    totals: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith(metric + "{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            key = (labels["stage"], labels["run"])
            totals[key] = totals.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


def test_submit_runs_once_publishes_with_lineage_and_reports_metrics(ray_head, tmp_path, monkeypatch):
    address, metrics_url = ray_head
    monkeypatch.setenv("ROOMTONE_ROOT", str(tmp_path / "home"))
    monkeypatch.delenv("ROOMTONE_CATALOG_URI", raising=False)
    plan = plan_spec(TINY)
    sub = jobs.submit(plan, address, scheduled=SLOT)
    assert sub.created
    assert jobs.wait(address, sub.submission_id, timeout=600) == "SUCCEEDED"

    again = jobs.submit(plan_spec(TINY), address, scheduled=SLOT)
    assert (again.submission_id, again.created) == (sub.submission_id, False)
    assert [j.submission_id for j in jobs.client(address).list_jobs()].count(sub.submission_id) == 1

    catalog = Catalog(CatalogConfig(root=str(tmp_path / "home")))
    lineage = catalog.lineage("scenes")
    assert {parent["ref"].split("@")[0] for parent in lineage["inputs"]} == {"events", "rooms"}
    want = {(s, catalog.show(s).run_id): float(catalog.show(s).stats["rows"]) for s in ("events", "rooms", "scenes")}
    deadline = time.monotonic() + 90  # Ray exports metrics every few seconds
    while (got := {k: v for k, v in scraped_totals(metrics_url, "ray_roomtone_items_total").items() if k in want}) \
            != want and time.monotonic() < deadline:
        time.sleep(3)
    assert got == want
    rirs = scraped_totals(metrics_url, "ray_roomtone_rirs_total")
    assert rirs[("rooms", catalog.show("rooms").run_id)] == want[("rooms", catalog.show("rooms").run_id)]


def test_a_stage_failing_on_the_cluster_names_the_stage_and_shows_the_log(ray_head, tmp_path, monkeypatch):
    address, _ = ray_head
    monkeypatch.setenv("ROOMTONE_ROOT", str(tmp_path / "home"))
    spec = {"name": "broken", "stages": {"scenes": {"kind": "scenes", "events": "no_such_library",
                                                    "rirs": "no_such_rooms"}}}
    sub = jobs.submit(plan_spec(spec), address, scheduled=SLOT)
    with pytest.raises(RoomtoneError, match="FAILED") as err:
        jobs.wait(address, sub.submission_id, timeout=300)
    assert "stage 'scenes' field 'events'" in err.value.problem
    assert "no_such_library" in err.value.problem


def test_an_unreachable_cluster_is_a_clear_error(monkeypatch):
    # Ray's job client would take RAY_ADDRESS (e.g. the README's ray:// export) over the address given
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:7")
    with pytest.raises(RoomtoneError, match="cannot reach the Ray Jobs API at http://127.0.0.1:9") as err:
        jobs.submit(plan_spec(TINY), "http://127.0.0.1:9", scheduled=SLOT)
    assert "127.0.0.1:7" not in str(err.value) and "RAY_API_SERVER_ADDRESS" not in os.environ


def test_a_slot_without_a_zone_is_utc_wherever_the_scheduler_runs(monkeypatch):
    plan = plan_spec(TINY)
    try:
        for zone in ("America/New_York", "Europe/Berlin", "UTC"):
            monkeypatch.setenv("TZ", zone)
            time.tzset()
            sid = jobs.submission_id(plan, jobs.schedule_slot(datetime(2026, 1, 2, 3, 0)))
            assert sid.endswith("-20260102T0300Z"), (zone, sid)
    finally:
        monkeypatch.undo()
        time.tzset()
    berlin = timezone(timedelta(hours=1))
    assert jobs.submission_id(plan, jobs.schedule_slot(datetime(2026, 1, 2, 3, 0, tzinfo=berlin))).endswith("T0200Z")
