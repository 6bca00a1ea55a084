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

# How long a job on a cluster waits for an autoscaler to add the CPUs or GPUs it needs (KubeRay
# starts worker pods in minutes; a cluster whose idle workers were removed has none until asked).
SCALE_UP_ENV, SCALE_UP_DEFAULT_S = "ROOMTONE_SCALE_UP_TIMEOUT_S", 600.0
FORWARDED_ENV = S3_PUBLIC_ENV + ("ROOMTONE_ROOT", "ROOMTONE_CATALOG_URI", "ROOMTONE_WAREHOUSE",
                                 "MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL", "AWS_EC2_METADATA_DISABLED",
                                 "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER",
                                 SCALE_UP_ENV)

# Ray Train's controller settles reports and the end of a run on a 2 s poll; on a local cluster
# that wait was ~5 s of every short run. A cluster keeps Ray's default unless the env sets one.
LOCAL_TRAIN_POLL_S = "0.25"


_dashboard: str | None = None
_local = False  # this process started the cluster it is connected to: no autoscaler can grow it


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
    global _dashboard, _local
    import ray

    if ray.is_initialized():
        return ray.cluster_resources()
    address = address or os.environ.get("RAY_ADDRESS") or None
    _local = not address
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


def scale_to(bundles: list[dict[str, float]], timeout_s: float | None = None) -> dict:
    """The cluster's resources once they cover ``bundles`` (e.g. one ``{"CPU": 4, "GPU": 1}`` per
    training worker), or when waiting ends; the caller checks them with its own message.

    Short of them on a cluster this process joined, the autoscaler is asked for the bundles
    (``ray.autoscaler.sdk.request_resources``; a cluster without one ignores the request) and
    this waits up to ``timeout_s`` (default ROOMTONE_SCALE_UP_TIMEOUT_S, else 600 s) for them to
    join; then the request is withdrawn, so idle workers can go again once the job ends. A local
    cluster this process started cannot grow: it is returned as it is.
    """
    import time

    import ray

    need: dict[str, float] = {}
    for bundle in bundles:
        for key, value in bundle.items():
            need[key] = need.get(key, 0.0) + value
    have = ray.cluster_resources()
    short = {k: v for k, v in need.items() if have.get(k, 0.0) < v}
    if not short or _local:
        return have
    if timeout_s is None:
        try:
            timeout_s = float(os.environ.get(SCALE_UP_ENV) or SCALE_UP_DEFAULT_S)
        except ValueError:
            raise RoomtoneError(f"{SCALE_UP_ENV}={os.environ[SCALE_UP_ENV]!r} is not a number of seconds",
                                f"set it to e.g. {SCALE_UP_DEFAULT_S:.0f}, or unset it") from None
    from ray.autoscaler.sdk import request_resources

    logging.getLogger(__name__).warning("the cluster has %s of %s; asking its autoscaler and waiting up to %.0f s",
                                        {k: have.get(k, 0.0) for k in short}, short, timeout_s)
    request_resources(bundles=bundles)
    try:
        deadline = time.monotonic() + timeout_s
        while any(have.get(k, 0.0) < v for k, v in need.items()) and time.monotonic() < deadline:
            time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
            have = ray.cluster_resources()
    finally:
        request_resources(bundles=[])
    return have


def dashboard_url() -> str | None:
    """The Ray dashboard of the cluster this process connected to, if it has one."""
    return _dashboard
