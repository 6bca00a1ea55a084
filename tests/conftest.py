"""Real services on 127.0.0.1 for the tests: an S3 (moto) server, PostgreSQL, a Ray cluster, and one
run of the README's demo command."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from hypothesis import settings

# CI explores the same property-test examples on every run (a red CI must mean a change broke
# something, not that a new random example turned up); locally each run explores new ones and
# replays past failures from .hypothesis/
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_proxy():
    """moto's standalone server behind the fault-injecting proxy of tests/reliability/s3_proxy.py,
    which forwards every request unchanged unless a test schedules faults."""
    from moto.server import ThreadedMotoServer

    from tests.reliability.s3_proxy import S3FaultProxy

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    proxy = S3FaultProxy(f"http://{host}:{port}").start()
    yield proxy
    proxy.stop()
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def s3_server(s3_proxy):
    """The S3 endpoint (moto, through the proxy); the AWS_* environment points every SDK at it.

    Started before anything else so that Ray workers inherit the same environment, proxy
    included: a test switches the proxy's faults without restarting Ray. Five attempts per
    request (roomtone's default is 10) keep a permanent failure's backoff short in tests."""
    env = {"AWS_ENDPOINT_URL": s3_proxy.url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "5",
           "AWS_EC2_METADATA_DISABLED": "true", "ROOMTONE_RAY_DASHBOARD": "0"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env["AWS_ENDPOINT_URL"]
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def bucket(s3_server) -> str:
    """A fresh bucket per test (moto's state is process-wide)."""
    name = f"rt-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def postgres_uri():
    """A real PostgreSQL server (Debian's), started here on 127.0.0.1 and stopped after."""
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    if not initdb[-1]:
        pytest.skip("PostgreSQL server is not installed (.ci/run installs it with apt-get)")
    bindir = Path(initdb[-1]).parent
    data = Path(tempfile.mkdtemp(prefix="roomtone-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run([*run_as, bindir / "initdb", "-D", data / "db", "-U", "roomtone", "--auth=trust"],
                   check=True, capture_output=True)
    subprocess.run([*run_as, bindir / "pg_ctl", "-D", data / "db", "-l", data / "log", "-w", "start",
                    "-o", f"-p {port} -h 127.0.0.1 -k {data}"], check=True, capture_output=True)
    yield f"postgresql+psycopg2://roomtone@127.0.0.1:{port}/postgres"
    subprocess.run([*run_as, bindir / "pg_ctl", "-D", data / "db", "-m", "fast", "-w", "stop"],
                   capture_output=True)
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_config(request, tmp_path):
    """A catalog on a SQLite file, and the same on a real PostgreSQL server."""
    from catalog import CatalogConfig

    if request.param == "sqlite":
        return CatalogConfig(root=str(tmp_path / "home"))
    uri = request.getfixturevalue("postgres_uri")
    return CatalogConfig(root=str(tmp_path / "home"), uri=uri, namespace=f"t{uuid.uuid4().hex[:10]}")


@pytest.fixture
def catalog(catalog_config):
    from catalog import Catalog

    return Catalog(catalog_config)


@dataclass
class DemoRun:
    proc: subprocess.CompletedProcess
    home: Path  # ROOMTONE_ROOT: catalog, shards, plots, MLflow store
    ray_tmp: Path  # RAY_TMPDIR: the demo cluster's session logs


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The README's demo command (--quick), run once with a secret planted in its environment:
    test_readme checks what it makes, test_secrets that the secret reached none of it."""
    from tests.helpers import PLANTED_ENV, readme_commands

    home, ray_tmp = tmp_path_factory.mktemp("demo") / "home", Path(tempfile.mkdtemp(prefix="rt"))  # short: Ray's sockets
    env = {**os.environ, **PLANTED_ENV, "ROOMTONE_ROOT": str(home), "ROOMTONE_RAY_DASHBOARD": "0",
           "RAY_TMPDIR": str(ray_tmp), "RAY_ADDRESS": ""}
    proc = subprocess.run(readme_commands()["demo"] + " --quick", shell=True, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    yield DemoRun(proc, home, ray_tmp)
    shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_cluster(s3_server):
    """One local Ray cluster for the whole session (starting one costs seconds)."""
    import ray

    from catalog.cluster import connect

    connect(num_cpus=2)
    yield
    ray.shutdown()
