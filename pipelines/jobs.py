"""Submit pipeline specs to a Ray cluster as Ray Jobs, at most once per spec and scheduled time.

The submission id is derived from the validated spec's digest and the scheduled time, so a
scheduler that retries (a CronJob restarted, a CI step re-run) finds the job it already
started instead of starting a second copy. The job runs ``roomtone run`` on the cluster
with this checkout's packages shipped as ``py_modules``, so the cluster runs the code
that validated the spec; only non-secret settings travel in the runtime environment.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from catalog.cluster import FORWARDED_ENV
from catalog.errors import RoomtoneError
from pipelines import metrics
from pipelines.spec import Plan

PACKAGES = ("catalog", "simulation", "pipelines", "pretrain")
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
AGENT_WAIT_S = 60


@dataclass
class Submission:
    submission_id: str
    status: str
    created: bool  # False when the same spec and time had already been submitted


def auth_token() -> str | None:
    """Ray's token (clusters with token authentication): RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    return path.read_text().strip() if path.is_file() else None


def client(address: str):
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    if not address:
        raise RoomtoneError("no Ray cluster address given", "pass --address http://HEAD:8265 or set RAY_ADDRESS")
    token = auth_token()
    try:
        with _api_server_address(address):
            return JobSubmissionClient(address, headers={"Authorization": f"Bearer {token}"} if token else None)
    except AuthenticationError:
        raise RoomtoneError(f"the Ray cluster at {address} refused our credentials",
                            "set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the cluster's token; "
                            "`ray get-auth-token` prints it on the head node") from None
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RoomtoneError(f"cannot reach the Ray Jobs API at {address}: {str(exc).splitlines()[0]}",
                            "check the dashboard address (http://HEAD:8265) and that the cluster is up") from None


@contextmanager
def _api_server_address(address: str):
    """Ray's job client takes RAY_ADDRESS over the address it is given; the address given here wins
    (RAY_API_SERVER_ADDRESS, which Ray reads first, is set while the client is made)."""
    name = "RAY_API_SERVER_ADDRESS"
    before = os.environ.get(name)
    os.environ[name] = address
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def schedule_slot(scheduled: datetime | None) -> datetime:
    """Now to the minute, or the time given: in UTC where it names no zone, so schedulers in
    different zones name the same slot alike."""
    if scheduled is None:
        return datetime.now(timezone.utc).replace(second=0, microsecond=0)
    return scheduled.replace(tzinfo=timezone.utc) if scheduled.tzinfo is None else scheduled


def submission_id(plan: Plan, scheduled: datetime) -> str:
    return f"roomtone-{plan.spec.name}-{plan.digest[:12]}-{scheduled.astimezone(timezone.utc):%Y%m%dT%H%MZ}"


def submit(plan: Plan, address: str, *, scheduled: datetime | None = None) -> Submission:
    """Submit once: an existing job with the same id is reported, never duplicated."""
    jobs = client(address)
    scheduled = schedule_slot(scheduled)
    sid = submission_id(plan, scheduled)
    existing = _status(jobs, sid)
    if existing:
        return Submission(sid, existing, created=False)
    root = Path(__file__).resolve().parents[1]
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    env[metrics.PIPELINE_ENV] = plan.spec.name
    env["RAY_OVERRIDE_JOB_RUNTIME_ENV"] = "1"  # the job's driver calls connect(), which adds the same env vars
    with tempfile.TemporaryDirectory() as workdir:
        (Path(workdir) / "spec.yaml").write_text(yaml.safe_dump(_spec_body(plan), sort_keys=False))
        runtime_env = {"working_dir": workdir, "env_vars": env,
                       "py_modules": [str(root / p) for p in PACKAGES if (root / p).is_dir()],
                       "excludes": ["__pycache__", "*.pyc"]}
        metadata = {"roomtone_spec": plan.spec.name, "roomtone_digest": plan.digest,
                    "scheduled": scheduled.isoformat()}
        deadline = time.monotonic() + AGENT_WAIT_S
        while True:
            try:
                jobs.submit_job(entrypoint="python -m pipelines.cli run spec.yaml", submission_id=sid,
                                runtime_env=runtime_env, metadata=metadata)
                break
            except RuntimeError as exc:
                if "already exists" in str(exc) or _status(jobs, sid):  # a racing retry got there first
                    return Submission(sid, _status(jobs, sid) or "PENDING", created=False)
                if "No available agent" in str(exc) and time.monotonic() < deadline:
                    time.sleep(2)  # a head that just started serves the API before its job agent is up
                    continue
                raise RoomtoneError(f"Ray refused the job {sid}: {str(exc).splitlines()[0]}",
                                    "see the Ray dashboard's Jobs page") from None
    return Submission(sid, _status(jobs, sid) or "PENDING", created=True)


def _spec_body(plan: Plan) -> dict:
    """The validated spec as a plain mapping (defaults filled in, so the cluster runs exactly this)."""
    stages = {s.key: {"kind": s.kind, **s.config.model_dump(mode="json")} for s in plan.stages}
    return {"name": plan.spec.name, "description": plan.spec.description, "stages": stages}


def _status(jobs, sid: str) -> str | None:
    try:
        return str(jobs.get_job_status(sid).value)
    except RuntimeError:  # the Jobs API answers 404 as RuntimeError: no such job
        return None


def status(address: str, sid: str) -> str:
    found = _status(client(address), sid)
    if found is None:
        raise RoomtoneError(f"no job {sid} on {address}", "list jobs with `roomtone jobs list --address ...`")
    return found


def wait(address: str, sid: str, *, timeout: float = 3600, poll: float = 2.0) -> str:
    """Block until the job ends; a failed job raises with the tail of its log."""
    jobs, deadline = client(address), time.monotonic() + timeout
    while (state := status(address, sid)) not in TERMINAL:
        if time.monotonic() > deadline:
            raise RoomtoneError(f"job {sid} still {state} after {timeout:.0f} s",
                                f"follow it with `roomtone jobs logs {sid} --address {address}`")
        time.sleep(poll)
    if state != "SUCCEEDED":
        tail = "\n".join(jobs.get_job_logs(sid).splitlines()[-30:])
        raise RoomtoneError(f"job {sid} {state}; last lines of its log:\n{tail}",
                            f"full log: roomtone jobs logs {sid} --address {address}")
    return state
