"""A multi-node Ray cluster on this machine, for tests that lose a node or a driver.

Every node is ``ray start --block`` in its own process group, so a test can kill one node
whole, as when its machine goes away. Other Ray clusters may be running on the same
machine: each node binds its own free ports (its workers: any free port) and keeps its
own temp dir (so ``/tmp/ray/ray_current_cluster`` is never written), the cluster has its own
auth token, and only the processes started here are ever killed. Ray workers put themselves
in process groups of their own, so a node is killed as its whole process tree.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from catalog.shards import SHARD_NAME
from tests.conftest import free_port

RAY = Path(sys.executable).parent / "ray"
STARTED = "Ray runtime started."  # `ray start` logs it once its raylet is registered with the GCS


def _living() -> dict[int, int]:
    """pid -> parent pid of every process that is not a zombie."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        state, ppid = text.rsplit(")", 1)[1].split()[:2]  # the command name may hold spaces and ')'
        if state != "Z":
            parents[int(stat.parent.name)] = int(ppid)
    return parents


def process_tree(pid: int) -> set[int]:
    """``pid`` and its living descendants."""
    children: dict[int, list[int]] = {}
    for child, parent in _living().items():
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        found.add(p)
        todo += children.get(p, [])
    return found


def kill_tree(pgid: int, pids: set[int], timeout: float = 60) -> None:
    """SIGKILL a process group and the given processes at once, and wait until all are gone."""
    for target, kill in ((pgid, os.killpg), *((p, os.kill) for p in pids)):
        try:
            kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while pids & set(_living()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {sorted(pids & set(_living()))} outlived SIGKILL")
        time.sleep(0.1)


def running(pids: set[int], title: str) -> bool:
    """Whether one of ``pids`` is a Ray worker executing ``title`` now (Ray sets ``ray::<task name>``)."""
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode() == f"ray::{title}":
                return True
        except OSError:
            pass
    return False


@dataclass
class Group:
    """A process group started here: a Ray node or a driver."""

    name: str
    process: subprocess.Popen
    log: Path
    killed: bool = False

    def kill(self) -> None:
        """All its processes die at once, nothing shuts down cleanly: a node is lost as with its machine."""
        if self.killed:
            return
        self.killed = True
        # a `ray start` that already exited has no tree left to walk (its pid may be anyone's now)
        kill_tree(self.process.pid, process_tree(self.process.pid) if self.process.poll() is None else set())
        self.process.wait()

    def runs(self, title: str) -> bool:
        """Whether a worker of this node is executing a task named ``title`` now."""
        return not self.killed and running(process_tree(self.process.pid), title)


class LocalCluster:
    """A head (``head_cpus``, 0 keeps tasks off it) and ``workers`` nodes of ``worker_cpus`` each.

    Use as a context manager; :attr:`env` is what a driver process needs to join it."""

    def __init__(self, workers: int = 2, *, head_cpus: int = 0, worker_cpus: int = 1, timeout: float = 120):
        self.workers, self.head_cpus, self.worker_cpus, self.timeout = workers, head_cpus, worker_cpus, timeout
        self.dir = Path(tempfile.mkdtemp(prefix="rt-ray-"))  # short: Ray's socket paths live under it
        self.port = 0  # the head's GCS port, once started
        self.nodes: list[Group] = []
        self.drivers: list[Group] = []
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env["PATH"] = f"{RAY.parent}{os.pathsep}{env['PATH']}"
        # a token of its own: the shared ~/.ray/auth_token may be replaced by anyone meanwhile
        self.auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        # a node whose processes are all killed is declared dead after 3 refused health checks 1 s apart
        # (Ray's default waits about 15 s); a node that is merely slow still answers within the timeout
        self._node_env = {**env, **self.auth, "RAY_health_check_period_ms": "1000",
                          "RAY_health_check_failure_threshold": "3"}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment of a driver that runs on this cluster (``RAY_ADDRESS`` and the token)."""
        return {**os.environ, **self.auth, "RAY_ADDRESS": self.address}

    def __enter__(self) -> "LocalCluster":
        try:
            self._start_all(["head"])
            self._start_all([f"worker{i}" for i in range(1, self.workers + 1)])
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def node(self, name: str) -> Group:
        return next(n for n in self.nodes if n.name == name)

    def runs(self, title: str) -> bool:
        """Whether any node is executing a task named ``title`` now."""
        return any(node.runs(title) for node in self.nodes)

    def driver(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> Group:
        """Start a driver process (``env``: default :attr:`env`) in its own process group; :meth:`stop` kills it."""
        with open(log, "w") as out:
            process = subprocess.Popen(args, env=env or self.env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.drivers.append(Group(Path(args[0]).name, process, log))
        return self.drivers[-1]

    def _start_all(self, names: list[str], attempts: int = 2) -> None:
        """Start these nodes together and wait until each is up. A node that fails to start, as when
        another process took one of its free ports meanwhile, is started again on fresh ports."""
        for _ in range(attempts):
            started = [self._start(name) for name in names]
            failed = [node for node in started if not self._up(node)]
            if not failed:
                return
            for node in failed:
                node.kill()
                self.nodes.remove(node)
                shutil.rmtree(self.dir / node.name, ignore_errors=True)
            names = [node.name for node in failed]
        raise RuntimeError(f"Ray nodes {names} did not start; the last log:\n{failed[-1].log.read_text()[-3000:]}")

    def _start(self, name: str) -> Group:
        if name == "head":
            self.port = free_port()
            role = [f"--port={self.port}", "--head", f"--num-cpus={self.head_cpus}", "--include-dashboard=false",
                    f"--ray-client-server-port={free_port()}"]
        else:
            role = [f"--address={self.address}", f"--num-cpus={self.worker_cpus}"]
        node_dir = self.dir / name
        node_dir.mkdir()
        log = node_dir / "start.log"
        with open(log, "w") as out:
            process = subprocess.Popen(
                [str(RAY), "start", *role, "--node-ip-address=127.0.0.1", f"--temp-dir={node_dir}",
                 f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
                 f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
                 f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
                 "--min-worker-port=0", "--max-worker-port=0", "--object-store-memory=100000000",
                 "--disable-usage-stats", "--block"],
                env=self._node_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        node = Group(name, process, log)
        self.nodes.append(node)
        return node

    def _up(self, node: Group) -> bool:
        deadline = time.monotonic() + self.timeout
        while STARTED not in node.log.read_text():
            if node.process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def stop(self) -> None:
        """Kill the drivers, then every node (workers first, so none outlives the head), and drop the temp dirs."""
        for node in self.drivers + self.nodes[::-1]:
            node.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- roomtone pipelines as drivers on the cluster ---------------------------------------------

ROOMTONE = Path(sys.executable).parent / "roomtone"
SCENES = 48


def scenes_spec() -> dict:
    """The TINY spec with SCENES 2 s scenes, about 8 to a shard (a second or so of work), so that a
    job killed after its first shard still has shards in flight and to do."""
    from tests.pipelines.test_spec import TINY

    scenes = {**TINY["stages"]["scenes"], "num_scenes": SCENES, "clip_seconds": 2.0, "rir_seconds": 0.5,
              "max_shard_bytes": 2_500_000}
    return {**TINY, "stages": {**TINY["stages"], "scenes": scenes}}


def run_spec(cluster: LocalCluster, spec: dict, root: Path) -> Group:
    """``roomtone run`` of ``spec`` on ``cluster`` as a driver, its catalog under ``root/home``."""
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    path = root / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {k: v for k, v in cluster.env.items() if k != "ROOMTONE_CATALOG_URI"}
    env["ROOMTONE_ROOT"] = str(root / "home")
    log = root / f"run-{len(list(root.glob('run-*.log')))}.log"
    return cluster.driver([str(ROOMTONE), "run", str(path)], log, env)


def staged(root: Path, name: str) -> dict[str, os.stat_result]:
    """The finished shard files in dataset ``name``'s staging folders under ``root``, by relative path."""
    return {str(p.relative_to(p.parents[2])): p.stat()
            for p in (root / "home" / "datasets" / name).glob("*/data/*/*.parquet")}


def planned(shards: dict[str, os.stat_result]) -> int:
    """How many shards the job planned, as their names say (``-of-NNNNN``)."""
    return sum({m["split"]: int(m["count"]) for m in map(SHARD_NAME.match, shards)}.values())


def wait_for(condition, what: str, driver: Group | None = None, timeout: float = 120) -> None:
    """Poll ``condition`` until it holds; fail, showing the driver's log, if the driver ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if (driver and driver.process.poll() is not None) or time.monotonic() > deadline:
            log = driver.log.read_text()[-3000:] if driver else ""
            raise AssertionError(f"no {what} before the driver ended or {timeout} s passed\n{log}")
        time.sleep(0.05)


def succeeded(driver: Group, timeout: float = 300) -> bool:
    """Wait for the driver and print its log (pytest shows it on failure); whether it exited 0."""
    code = driver.process.wait(timeout)
    print(driver.log.read_text()[-3000:])
    return code == 0
