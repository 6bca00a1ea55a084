"""MLflow for training runs: one run per training run, resumed (not duplicated) after failures.

The driver opens the run before training (flattened params, the input datasets as
``name@snapshot`` with the manifest digest, tags) and records its id in the run folder, so a
restarted or resumed run logs into the same MLflow run. World rank 0 logs per-step and
system metrics and checkpoints from inside the Ray Train loop (Train V2 has no MLflow
callback); the driver registers the final encoder. The tracking URI defaults to a SQLite
store under the roomtone root, or ``MLFLOW_TRACKING_URI`` (a server URL on a cluster).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import resource
import time
import urllib.parse
import urllib.request
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from catalog import CatalogConfig, Location
from catalog.errors import RoomtoneError
from catalog.redact import redact

RUN_FILE = "mlflow-run.json"
# MLflow logs its store migrations and model-format notes at INFO; a run's console is its
# progress bar. Read when mlflow is first imported, so set here; the user's value wins.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def tracking_uri(config: CatalogConfig, explicit: str | None = None) -> str:
    """The explicit URI, else MLFLOW_TRACKING_URI, else ``sqlite:///<root>/mlflow.db`` on a local root."""
    uri = explicit or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    root = config.root_location
    if root.is_s3:
        raise RoomtoneError(f"the root {root.uri} is on S3, so there is no local MLflow store to default to",
                            "set MLFLOW_TRACKING_URI (or tracking_uri) to your MLflow server URL")
    Path(root.uri).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(root.uri).resolve() / 'mlflow.db'}"


def check_reachable(uri: str) -> str:
    """`uri`, once an http(s) tracking server answers there (`catalog.cluster.check_listening`)."""
    from catalog.cluster import check_listening

    parts = urllib.parse.urlsplit(uri)
    proxied = parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(parts.hostname or "")
    if parts.scheme in ("http", "https") and not proxied:  # behind a proxy, only the proxy can tell
        check_listening(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80),
                        f"cannot reach the MLflow server at {redact(uri)}",
                        "start it, or set tracking_uri / MLFLOW_TRACKING_URI to one that runs (unset both for the "
                        "SQLite store under the root)")
    return uri


def flatten(value, prefix: str = "") -> dict[str, str]:
    """Nested dicts -> {"a.b": "v"} (MLflow rejects nested params), values as short strings."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: json.dumps(value) if not isinstance(value, str) else value}


def _experiment(client, name: str, artifacts: str) -> str:
    exp = client.get_experiment_by_name(name)
    return exp.experiment_id if exp else client.create_experiment(name, artifact_location=artifacts)


def open_run(uri: str, experiment: str, run_name: str, run_dir: Location, params: dict, sources: list,
             artifacts: str | None) -> str:
    """Create (or find again, from the run folder) the MLflow run; log params and dataset inputs."""
    import mlflow
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    marker = run_dir.join(RUN_FILE)
    if marker.exists():
        saved = json.loads(marker.read_bytes())
        if saved.get("tracking_uri") == uri:
            try:
                return client.get_run(saved["run_id"]).info.run_id
            except mlflow.exceptions.MlflowException:
                pass  # the store was reset: start a new run below
    try:
        exp_id = _experiment(client, experiment, artifacts)
    except mlflow.exceptions.MlflowException as exc:
        raise RoomtoneError(f"cannot reach the MLflow store {uri}: {str(exc).splitlines()[0]}",
                            "check --tracking-uri / MLFLOW_TRACKING_URI (or start the server)") from None
    run = client.create_run(exp_id, run_name=run_name, tags={"roomtone.run_dir": run_dir.uri})
    client.log_batch(run.info.run_id, params=[Param(k, v[:6000]) for k, v in flatten(redact(params)).items()])
    log_inputs(uri, run.info.run_id, sources, "training")
    marker.write_bytes(json.dumps({"tracking_uri": uri, "run_id": run.info.run_id}).encode())
    return run.info.run_id


class StepLogger:
    """Rank 0's logger inside the training loop: per-step metrics plus its own system metrics
    (throughput, CPU use, peak memory; psutil-free so every worker image has them).

    Steps are sent in order from one background thread: a `log_batch` is a store write or a
    server round trip (5.3 ms on the SQLite store, 10.7 ms on a local server), which the
    training step no longer waits on. `flush` waits for them and raises the first failure, so
    a checkpoint is only reached once its steps are stored."""

    def __init__(self, uri: str, run_id: str):
        import mlflow

        mlflow.set_tracking_uri(uri)
        self.client = mlflow.tracking.MlflowClient(uri)
        self.run_id = run_id
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()
        self._sender = ThreadPoolExecutor(1, thread_name_prefix="mlflow-steps")
        self._pending: list[Future] = []

    def log(self, step: int, metrics: dict[str, float], samples: int) -> None:
        import mlflow.entities

        now, cpu = time.perf_counter(), time.process_time()
        wall = max(now - self.wall0, 1e-9)
        system = {"system/samples_per_s": samples / wall, "system/cpu_percent": 100 * (cpu - self.cpu0) / wall,
                  "system/max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        try:
            import torch

            if torch.cuda.is_available():
                system["system/gpu_max_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
        except ImportError:
            pass
        self.cpu0, self.wall0 = cpu, now
        stamp = int(time.time() * 1000)
        entries = [mlflow.entities.Metric(k, float(v), stamp, step) for k, v in {**metrics, **system}.items()]
        self._pending.append(self._sender.submit(self.client.log_batch, self.run_id, metrics=entries))

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        for sent in pending:
            sent.result()

    def log_artifact(self, local_path: str, folder: str) -> None:
        self.client.log_artifact(self.run_id, local_path, folder)


def finished_run(run_dir: Location, uri: str) -> tuple[str, str | None] | None:
    """(run id, registered encoder version) when the run folder's MLflow run already finished."""
    import mlflow
    from mlflow import MlflowClient

    marker = run_dir.join(RUN_FILE)
    if not marker.exists():
        return None
    saved = json.loads(marker.read_bytes())
    if saved.get("tracking_uri") != uri:
        return None
    client = MlflowClient(uri)
    try:
        run = client.get_run(saved["run_id"])
    except mlflow.exceptions.MlflowException:
        return None
    if run.info.status != "FINISHED":
        return None
    versions = client.search_model_versions(f"run_id='{run.info.run_id}'")
    return run.info.run_id, (max(versions, key=lambda v: int(v.version)).version if versions else None)


def finish_run(uri: str, run_id: str, encoder, register_as: str | None, checkpoint: str | None,
               status: str = "FINISHED") -> str | None:
    """Log the final checkpoint, register the encoder (when ``register_as``), close the run."""
    import mlflow
    import mlflow.pytorch

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)  # also writes MLFLOW_TRACKING_URI, which must not outlive this call
    version = None
    try:
        with mlflow.start_run(run_id=run_id):
            if checkpoint:
                mlflow.log_artifact(checkpoint, "checkpoints")
            if encoder is not None:
                # pickle on purpose (the pt2 format needs torch.export of the encoder): MLflow's warning
                # about it, and its "registered"/"created version" lines, would repeat on every run;
                # the caller reports the version
                quiet = logging.getLogger("mlflow.pytorch")
                level = quiet.level
                quiet.setLevel(logging.ERROR)
                try:
                    with contextlib.redirect_stderr(io.StringIO()):
                        info = mlflow.pytorch.log_model(encoder, name="encoder", registered_model_name=register_as,
                                                        pip_requirements=["torch"], serialization_format="pickle")
                finally:
                    quiet.setLevel(level)
                version = str(info.registered_model_version) if register_as else None
        mlflow.tracking.MlflowClient(uri).set_terminated(run_id, status)
    finally:  # restored on failure too, or a stopped store's URI leaks into every later run
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    return version


def log_inputs(uri: str, run_id: str, sources: list, context: str) -> None:
    """The snapshots a run read, as MLflow dataset inputs: ``name@snapshot``, its manifest digest and
    ``context:split`` (training, or an evaluation's mode), so MLflow and the catalog point at each other."""
    import mlflow
    import pandas as pd
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.tracking import MlflowClient

    inputs = []
    for src in sources:
        manifest = pd.DataFrame({"uri": [u for u, _ in src.files], "rows": [n for _, n in src.files]})
        with warnings.catch_warnings():  # MLflow's hints on integer columns and its doubly registered sources
            warnings.simplefilter("ignore", UserWarning)
            ds = mlflow.data.from_pandas(manifest, source=src.files[0][0].rsplit("/", 2)[0], name=src.ref,
                                         digest=src.digest[:32])  # explicit: the store keeps 36 characters
            entity = ds._to_mlflow_entity()  # infers the schema, which warns again
        tags = {"mlflow.data.context": f"{context}:{src.split}", "roomtone.manifest_sha256": src.digest}
        inputs.append(DatasetInput(entity, [InputTag(k, v) for k, v in tags.items()]))
    MlflowClient(uri).log_inputs(run_id, datasets=inputs)


def set_tags(uri: str, run_id: str, tags: dict) -> None:
    """Tags for what may change over a run's life (params are written once)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    for k, v in flatten(tags).items():
        client.set_tag(run_id, k, v[:5000])


def log_eval(uri: str, run_id: str, metrics: dict[str, float], settings: dict) -> None:
    """Evaluation results into the training run; settings as tags (an evaluation may be re-run)."""
    from mlflow.tracking import MlflowClient

    set_tags(uri, run_id, settings)
    client = MlflowClient(uri)
    stamp = int(time.time() * 1000)
    import mlflow.entities

    client.log_batch(run_id, metrics=[mlflow.entities.Metric(k, float(v), stamp, 0) for k, v in metrics.items()])
