"""Connect to Ray: the cluster at ``address`` / ``RAY_ADDRESS``, or a local one sized to this machine.

Every job (pipelines, catalog loaders, training) calls :func:`connect`, so the same code
runs on a laptop and on a cluster. Only non-secret settings travel to remote workers:
S3 endpoint and region and the ROOMTONE_* locations; credentials come from the platform.
"""

from __future__ import annotations

import logging
import os
import socket

from catalog.errors import RoomtoneError
from catalog.storage import S3_PUBLIC_ENV

FORWARDED_ENV = S3_PUBLIC_ENV + ("ROOMTONE_ROOT", "ROOMTONE_CATALOG_URI", "ROOMTONE_WAREHOUSE",
                                 "MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL", "AWS_EC2_METADATA_DISABLED",
                                 "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER")

# Ray Train's controller settles reports and the end of a run on a 2 s poll; on a local cluster
# that wait was ~5 s of every short run. A cluster keeps Ray's default unless the env sets one.
LOCAL_TRAIN_POLL_S = "0.25"


_dashboard: str | None = None


def check_listening(host: str, port: int, problem: str, fix: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds where nothing listens at host:port; Ray's and MLflow's clients retry such an
    address for minutes, printing only their own warnings."""
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except (OSError, ValueError) as exc:
        raise RoomtoneError(f"{problem} ({getattr(exc, 'strerror', None) or exc})", fix) from None


def _check_reachable(address: str) -> None:
    """A Ray address host:port or ray://host:port where nothing listens fails here."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if "://" in target or not sep or not port.isdigit():
        return  # "auto" and other schemes: Ray resolves them itself
    check_listening(host.strip("[]"), int(port), f"cannot connect to Ray at {address}: nothing answers there",
                    "check --address / RAY_ADDRESS (the head's host:port, or ray://host:10001), or unset it to "
                    "start a local cluster")


def connect(address: str | None = None, *, num_cpus: int | None = None) -> dict:
    """Initialise Ray once per process and return its cluster resources."""
    global _dashboard
    import ray

    if ray.is_initialized():
        return ray.cluster_resources()
    address = address or os.environ.get("RAY_ADDRESS") or None
    runtime_env = {"env_vars": {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}}
    if address:
        _check_reachable(address)
    try:
        if address:
            context = ray.init(address=address, runtime_env=runtime_env, logging_level="WARNING")
        else:
            runtime_env["env_vars"].setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", LOCAL_TRAIN_POLL_S)
            # Ray Train's preemption watcher polls for nodes being drained; one machine has none, and
            # the watcher's actor logs a core_worker error line into every run's output
            runtime_env["env_vars"].setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")
            # a new local cluster gets Ray's default token auth; Ray's notice of it would print on every command
            logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
            # "local" always starts a new cluster: a stale /tmp/ray/ray_current_cluster must not be joined
            context = ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), runtime_env=runtime_env,
                               logging_level="WARNING", configure_logging=True, dashboard_host="127.0.0.1",
                               include_dashboard=os.environ.get("ROOMTONE_RAY_DASHBOARD", "1") != "0")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RoomtoneError(f"cannot connect to Ray at {address or 'a new local cluster'}: "
                            f"{str(exc).splitlines()[0]}",
                            "check --address / RAY_ADDRESS, or unset it to start a local cluster") from exc
    url = getattr(context, "dashboard_url", None)
    _dashboard = (url if url.startswith("http") else f"http://{url}") if url else None
    return ray.cluster_resources()


def dashboard_url() -> str | None:
    """The Ray dashboard of the cluster this process connected to, if it has one."""
    return _dashboard
