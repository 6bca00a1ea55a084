"""infra/ parses, agrees with itself and with the code, and passes a schema check of the
Kubernetes and KubeRay fields it uses.

No cluster, docker or kubectl is needed: the schemas below are the subset of the Kubernetes,
KubeRay (ray.io/v1) and Prometheus Operator APIs these manifests use, with KubeRay's own
admission rules (name lengths, replica bounds, TTL needs shutdown) added where they bite.
Unknown keys are refused at every level, so a misspelt field fails here instead of being
dropped by the API server.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import jsonschema
import pytest
import yaml
from packaging.specifiers import SpecifierSet

from catalog.cluster import FORWARDED_ENV
from catalog.config import CatalogConfig
from pipelines.metrics import COUNTERS
from pipelines.spec import plan_spec, read_spec

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
K8S = INFRA / "k8s"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
IMAGE = f"ghcr.io/roomtone/roomtone:{VERSION}"  # the one image every node runs
CPU_IMAGE = f"{IMAGE}-cpu"                      # the laptop stack's CPU build of the same version
METRICS_PORT = 8080
CREDENTIALS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD"}
DOCKERFILE = (INFRA / "Dockerfile").read_text()


def load_all(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@lru_cache(maxsize=1)
def k8s_objects() -> list[tuple[Path, dict]]:
    """Parsed once; tests copy before they change anything."""
    return [(p, d) for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml" for d in load_all(p)]


def by_kind(kind: str) -> list[dict]:
    return [d for _, d in k8s_objects() if d["kind"] == kind]


def compose() -> dict:
    return yaml.safe_load((INFRA / "compose" / "docker-compose.yaml").read_text())


def aws() -> dict:
    return yaml.safe_load((INFRA / "aws" / "cluster.yaml").read_text())


def dashboard() -> dict:
    return json.loads((INFRA / "grafana" / "roomtone-dashboard.json").read_text())


# --- schema subset ------------------------------------------------------------------------
DNS1123 = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1035 = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
QUANTITY = {"oneOf": [{"type": "integer", "minimum": 0},
                      {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"}]}
STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
NAME_REF = {"type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {"name": {"type": "string", "pattern": DNS1123}, "optional": {"type": "boolean"}}}


def obj(required=(), **props) -> dict:
    return {"type": "object", "required": list(required), "additionalProperties": False, "properties": props}


RESOURCES = obj(requests={"type": "object", "additionalProperties": QUANTITY},
                limits={"type": "object", "additionalProperties": QUANTITY})
ENV_VAR = obj(["name"], name={"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}, value={"type": "string"},
              valueFrom=obj(fieldRef=obj(["fieldPath"], fieldPath={"type": "string"}),
                            secretKeyRef=obj(["name", "key"], name={"type": "string"}, key={"type": "string"}),
                            configMapKeyRef=obj(["name", "key"], name={"type": "string"}, key={"type": "string"})))
CONTAINER = obj(
    ["name", "image"],
    name={"type": "string", "pattern": DNS1123}, image={"type": "string", "minLength": 1},
    command={"type": "array", "items": {"type": "string"}}, args={"type": "array", "items": {"type": "string"}},
    env={"type": "array", "items": ENV_VAR},
    envFrom={"type": "array", "items": obj(configMapRef=NAME_REF, secretRef=NAME_REF)},
    ports={"type": "array", "items": obj(["containerPort"], name={"type": "string", "maxLength": 15},
                                         containerPort={"type": "integer", "minimum": 1, "maximum": 65535})},
    resources=RESOURCES,
    volumeMounts={"type": "array", "items": obj(["name", "mountPath"], name={"type": "string"},
                                                mountPath={"type": "string", "pattern": "^/"},
                                                readOnly={"type": "boolean"})},
    lifecycle=obj(preStop=obj(exec=obj(["command"], command={"type": "array", "items": {"type": "string"}}))),
)
VOLUME = obj(["name"], name={"type": "string", "pattern": DNS1123},
             emptyDir=obj(medium={"enum": ["", "Memory"]}, sizeLimit=QUANTITY),
             configMap=obj(["name"], name={"type": "string"}))
POD_SPEC = obj(
    ["containers"],
    containers={"type": "array", "minItems": 1, "items": CONTAINER},
    initContainers={"type": "array", "items": CONTAINER},
    volumes={"type": "array", "items": VOLUME},
    serviceAccountName={"type": "string", "pattern": DNS1123},
    restartPolicy={"enum": ["Always", "OnFailure", "Never"]},
    securityContext=obj(runAsNonRoot={"type": "boolean"}, runAsUser={"type": "integer"},
                        runAsGroup={"type": "integer"}, fsGroup={"type": "integer"}),
    tolerations={"type": "array", "items": obj(["key", "operator"], key={"type": "string"},
                                               operator={"enum": ["Exists", "Equal"]}, value={"type": "string"},
                                               effect={"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]})},
)
POD_TEMPLATE = obj(["spec"], metadata=obj(labels=STR_MAP, annotations=STR_MAP), spec=POD_SPEC)
RAY_START_PARAMS = STR_MAP  # KubeRay takes every value as a string
RAY_CLUSTER_SPEC = obj(
    ["headGroupSpec"],
    rayVersion={"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
    enableInTreeAutoscaling={"type": "boolean"},
    authOptions=obj(["mode"], mode={"enum": ["disabled", "token"]}, secretName={"type": "string", "pattern": DNS1123}),
    autoscalerOptions=obj(upscalingMode={"enum": ["Default", "Aggressive", "Conservative"]},
                          idleTimeoutSeconds={"type": "integer", "minimum": 0}, resources=RESOURCES),
    headGroupSpec=obj(["template"], rayStartParams=RAY_START_PARAMS, template=POD_TEMPLATE),
    workerGroupSpecs={"type": "array", "items": obj(
        ["groupName", "template"], groupName={"type": "string", "pattern": DNS1123},
        replicas={"type": "integer", "minimum": 0}, minReplicas={"type": "integer", "minimum": 0},
        maxReplicas={"type": "integer", "minimum": 0}, rayStartParams=RAY_START_PARAMS, template=POD_TEMPLATE)},
)


def meta(max_len: int = 63, pattern: str = DNS1123) -> dict:
    return obj(["name"], name={"type": "string", "pattern": pattern, "maxLength": max_len},
               labels=STR_MAP, annotations=STR_MAP)


def kind(api: str, name: str, spec: dict | None = None, *, metadata: dict | None = None, **extra) -> dict:
    props = {"apiVersion": {"const": api}, "kind": {"const": name}, "metadata": metadata or meta(), **extra}
    if spec is not None:
        props["spec"] = spec
    return obj(["apiVersion", "kind", "metadata"] + (["spec"] if spec is not None else []), **props)


SCHEMAS = {
    "ConfigMap": kind("v1", "ConfigMap", data=STR_MAP),
    "ServiceAccount": kind("v1", "ServiceAccount"),
    "Role": kind("rbac.authorization.k8s.io/v1", "Role", rules={"type": "array", "minItems": 1, "items": obj(
        ["apiGroups", "resources", "verbs"], **{k: {"type": "array", "minItems": 1, "items": {"type": "string"}}
                                                for k in ("apiGroups", "resources", "verbs")})}),
    "RoleBinding": kind("rbac.authorization.k8s.io/v1", "RoleBinding",
                        roleRef=obj(["apiGroup", "kind", "name"], apiGroup={"const": "rbac.authorization.k8s.io"},
                                    kind={"enum": ["Role", "ClusterRole"]}, name={"type": "string"}),
                        subjects={"type": "array", "minItems": 1, "items": obj(
                            ["kind", "name"], kind={"const": "ServiceAccount"}, name={"type": "string"},
                            namespace={"type": "string"})}),
    # KubeRay: RayCluster names <= 53 characters, RayJob names <= 47 (it appends 6 for its cluster).
    "RayCluster": kind("ray.io/v1", "RayCluster", RAY_CLUSTER_SPEC, metadata=meta(53, DNS1035)),
    "RayJob": kind("ray.io/v1", "RayJob", obj(
        ["entrypoint"], entrypoint={"type": "string", "minLength": 1}, rayClusterSpec=RAY_CLUSTER_SPEC,
        clusterSelector=obj(["ray.io/cluster"], **{"ray.io/cluster": {"type": "string", "minLength": 1}}),
        shutdownAfterJobFinishes={"type": "boolean"}, ttlSecondsAfterFinished={"type": "integer", "minimum": 0},
        activeDeadlineSeconds={"type": "integer", "minimum": 1}, backoffLimit={"type": "integer", "minimum": 0},
        runtimeEnvYAML={"type": "string"},
        submissionMode={"enum": ["K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"]}),
        metadata=meta(47, DNS1035)),
    "CronJob": kind("batch/v1", "CronJob", obj(
        ["schedule", "jobTemplate"], schedule={"type": "string"}, timeZone={"type": "string"},
        concurrencyPolicy={"enum": ["Allow", "Forbid", "Replace"]},
        startingDeadlineSeconds={"type": "integer", "minimum": 0},
        successfulJobsHistoryLimit={"type": "integer", "minimum": 0},
        failedJobsHistoryLimit={"type": "integer", "minimum": 0},
        jobTemplate=obj(["spec"], spec=obj(
            ["template"], backoffLimit={"type": "integer", "minimum": 0},
            activeDeadlineSeconds={"type": "integer", "minimum": 1}, template=POD_TEMPLATE))),
        metadata=meta(52)),
    "PodMonitor": kind("monitoring.coreos.com/v1", "PodMonitor", obj(
        ["selector", "podMetricsEndpoints"], selector=obj(matchLabels=STR_MAP),
        podMetricsEndpoints={"type": "array", "minItems": 1, "items": obj(
            ["port"], port={"type": "string"}, interval={"type": "string", "pattern": r"^\d+[smh]$"},
            relabelings={"type": "array", "items": obj(sourceLabels={"type": "array", "items": {"type": "string"}},
                                                       targetLabel={"type": "string"})})})),
}


VALIDATORS = {k: jsonschema.Draft202012Validator(s) for k, s in SCHEMAS.items()}


def ray_cluster_specs() -> list[tuple[str, dict]]:
    return ([(f"RayCluster {d['metadata']['name']}", d["spec"]) for d in by_kind("RayCluster")]
            + [(f"RayJob {d['metadata']['name']}", d["spec"]["rayClusterSpec"])
               for d in by_kind("RayJob") if "rayClusterSpec" in d["spec"]])


def groups(spec: dict) -> list[dict]:
    return [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]


def ray_containers() -> list[tuple[str, dict]]:
    return [(f"{where} {g.get('groupName', 'head')}", g["template"]["spec"]["containers"][0])
            for where, spec in ray_cluster_specs() for g in groups(spec)]


def pod_specs() -> list[tuple[str, dict]]:
    return ([(where, g["template"]["spec"]) for where, spec in ray_cluster_specs() for g in groups(spec)]
            + [(f"CronJob {d['metadata']['name']}", d["spec"]["jobTemplate"]["spec"]["template"]["spec"])
               for d in by_kind("CronJob")])


# --- the tests ------------------------------------------------------------------------------
def test_every_yaml_and_json_file_in_infra_parses():
    files = [p for p in INFRA.rglob("*") if p.suffix in {".yaml", ".yml", ".json"}]
    assert len(files) >= 10
    for path in files:
        docs = [json.loads(path.read_text())] if path.suffix == ".json" else load_all(path)
        assert docs and all(isinstance(d, dict) for d in docs), path


@pytest.mark.parametrize("path,doc", k8s_objects(), ids=lambda v: v.name if isinstance(v, Path) else v["kind"])
def test_kubernetes_objects_match_the_schema_of_their_kind(path, doc):
    assert doc.get("kind") in SCHEMAS, f"{path.name}: no schema for kind {doc.get('kind')}; add one here"
    jsonschema.Draft202012Validator.check_schema(SCHEMAS[doc["kind"]])
    VALIDATORS[doc["kind"]].validate(doc)


def test_the_schema_check_refuses_what_the_api_server_would():
    """The schemas are strict enough to catch the usual slips (guards against a check that passes anything)."""
    cluster = by_kind("RayCluster")[0]
    bad = [json.loads(json.dumps(cluster)) for _ in range(4)]
    bad[0]["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0].pop("image")
    bad[1]["spec"]["workerGroupSpecs"][0]["maxReplica"] = 3                           # misspelt field
    bad[2]["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0                  # not a string
    bad[3]["metadata"]["name"] = "Roomtone"                                            # not a DNS-1035 label
    for doc in bad:
        with pytest.raises(jsonschema.ValidationError):
            VALIDATORS["RayCluster"].validate(doc)


def test_pods_mount_only_volumes_they_declare_and_read_config_that_exists():
    config_maps = {d["metadata"]["name"] for d in by_kind("ConfigMap")} | {"roomtone-rayjob-template"}
    for where, pod in pod_specs():
        declared = [v["name"] for v in pod.get("volumes", [])]
        assert len(set(declared)) == len(declared), where
        containers = pod.get("initContainers", []) + pod["containers"]
        for c in containers:
            assert {m["name"] for m in c.get("volumeMounts", [])} <= set(declared), (where, c["name"])
        used = ({r["configMapRef"]["name"] for c in containers for r in c.get("envFrom", []) if "configMapRef" in r}
                | {v["configMap"]["name"] for v in pod.get("volumes", []) if "configMap" in v})
        assert used <= config_maps, where


def test_every_ray_pod_runs_as_one_service_account_that_the_manifests_define():
    """One account to annotate for IRSA (or bind with Pod Identity) gives every Ray pod bucket access."""
    accounts = {d["metadata"]["name"] for d in by_kind("ServiceAccount")}
    ray_pods = {f"{where} {g.get('groupName', 'head')}": g["template"]["spec"].get("serviceAccountName")
                for where, spec in ray_cluster_specs() for g in groups(spec)}
    assert len(ray_pods) == 6 and set(ray_pods.values()) == {"roomtone"}, ray_pods
    for where, pod in pod_specs():
        assert pod.get("serviceAccountName") in accounts, where


def test_ray_clusters_have_cpu_and_gpu_groups_that_autoscale_within_bounds():
    specs = ray_cluster_specs()
    assert {w for w, _ in specs} >= {"RayCluster roomtone", "RayJob roomtone-demo"}
    for where, spec in specs:
        assert spec["enableInTreeAutoscaling"] is True, where
        workers = spec["workerGroupSpecs"]
        assert len({g["groupName"] for g in workers}) == len(workers), where
        for g in workers:
            assert g["minReplicas"] <= g.get("replicas", g["minReplicas"]) <= g["maxReplicas"], (where, g["groupName"])
        gpus = {g["groupName"]: g["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu", 0)
                for g in workers}
        assert gpus["cpu"] == 0 and gpus["gpu"] == 1, where
        gpu_pod = next(g for g in workers if g["groupName"] == "gpu")["template"]["spec"]
        assert any(t["key"] == "nvidia.com/gpu" for t in gpu_pod.get("tolerations", [])), where
        # KubeRay refuses resources in both rayStartParams and the group's `resources` field.
        for g in groups(spec):
            assert not ({"num-cpus", "num-gpus"} & set(g.get("rayStartParams", {})) and g.get("resources")), where


def test_every_ray_container_runs_the_image_exports_metrics_and_takes_credentials_from_the_secret():
    versions = {spec["rayVersion"] for _, spec in ray_cluster_specs()}
    assert versions == {re.search(r"ARG RAY_VERSION=(\S+)", DOCKERFILE).group(1)}
    assert versions.pop() in SpecifierSet(next(d for d in PYPROJECT["project"]["dependencies"]
                                               if d.startswith("ray[")).split("]", 1)[1])
    for where, spec in ray_cluster_specs():
        for g in groups(spec):
            assert g["rayStartParams"]["metrics-export-port"] == str(METRICS_PORT), where
    for where, c in ray_containers():
        assert c["image"] == IMAGE, where
        assert {"name": "metrics", "containerPort": METRICS_PORT} in c["ports"], where
        refs = {next(iter(r)): next(iter(r.values()))["name"] for r in c["envFrom"]}
        assert refs == {"configMapRef": "roomtone-config", "secretRef": "roomtone-credentials"}, where
        for var in c.get("env", []):
            assert var["name"] not in CREDENTIALS, f"{where}: {var['name']} must come from the Secret"


def test_the_configmap_sets_only_settings_roomtone_forwards_and_they_validate():
    config = next(d for d in by_kind("ConfigMap") if d["metadata"]["name"] == "roomtone-config")["data"]
    check_settings("ConfigMap roomtone-config", config)


def check_settings(where: str, env: dict) -> None:
    """Non-secret roomtone settings: names the code forwards to workers, values CatalogConfig accepts."""
    settings = {k: v for k, v in env.items() if k not in CREDENTIALS}
    assert set(settings) <= set(FORWARDED_ENV), f"{where}: {set(settings) - set(FORWARDED_ENV)} not forwarded"
    assert {"ROOMTONE_ROOT", "ROOMTONE_CATALOG_URI", "MLFLOW_TRACKING_URI"} <= set(settings), where
    uri = settings["ROOMTONE_CATALOG_URI"]
    assert not re.search(r"://[^/@]*:[^/@]*@", uri), f"{where}: a password in ROOMTONE_CATALOG_URI; use PGPASSWORD"
    CatalogConfig(root=settings["ROOMTONE_ROOT"], uri=uri, warehouse=settings.get("ROOMTONE_WAREHOUSE"))


def test_the_rayjob_runs_a_spec_that_ships_in_the_image_and_validates():
    (job,) = by_kind("RayJob")
    spec = job["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["roomtone", "run"] and argv[2].startswith("/app/")
    repo_path = REPO / argv[2].removeprefix("/app/")
    assert repo_path.is_file(), f"{argv[2]} is not in the repository ({repo_path})"
    # The image copies pipelines/specs to /app/pipelines/specs in both runtime stages.
    assert DOCKERFILE.count("COPY --chown=ray:users pipelines/specs /app/pipelines/specs") == 2
    plan = plan_spec(read_spec(repo_path), where=str(repo_path))
    assert plan.stages
    # KubeRay: exactly one of rayClusterSpec / clusterSelector; a TTL needs shutdownAfterJobFinishes.
    assert ("rayClusterSpec" in spec) != ("clusterSelector" in spec)
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0


CRON_FIELDS = [(0, 59, {}), (0, 23, {}), (1, 31, {}),
               (1, 12, {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}),
               (0, 7, {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())})]


def valid_cron(expr: str) -> bool:
    """A standard 5-field cron line: *, N, N-M, lists and /steps, month and weekday names."""
    fields = expr.split()
    if len(fields) != 5:
        return False
    for field, (lo, hi, names) in zip(fields, CRON_FIELDS):
        for part in field.split(","):
            base, _, step = part.partition("/")
            if step and not (step.isdigit() and int(step) > 0):
                return False
            if base == "*":
                continue
            ends = [names.get(x.upper(), x) for x in base.split("-")]
            if len(ends) > 2 or not all(str(e).isdigit() and lo <= int(e) <= hi for e in ends):
                return False
            if len(ends) == 2 and int(ends[0]) > int(ends[1]):
                return False
    return True


def test_cron_validator_accepts_standard_lines_and_refuses_broken_ones():
    assert all(map(valid_cron, ["0 2 * * *", "*/15 0-6 1,15 JAN-MAR MON-FRI", "30 23 * * 7"]))
    assert not any(map(valid_cron, ["0 2 * *", "60 2 * * *", "0 24 * * *", "0 2 0 * *", "0 2 * 13 *",
                                    "*/0 * * * *", "5-1 * * * *", "0 2 * * * *"]))


def test_the_schedule_forbids_overlap_and_needs_only_what_it_is_granted():
    (cron,) = by_kind("CronJob")
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert valid_cron(spec["schedule"])
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in {"Never", "OnFailure"}
    account = next(a for a in by_kind("ServiceAccount") if a["metadata"]["name"] == pod["serviceAccountName"])
    (role,) = by_kind("Role")
    (binding,) = by_kind("RoleBinding")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert {s["name"] for s in binding["subjects"]} == {account["metadata"]["name"]}
    (rule,) = role["rules"]
    assert rule["apiGroups"] == ["ray.io"] and rule["resources"] == ["rayjobs"]
    assert {"create", "get", "patch"} <= set(rule["verbs"])  # server-side apply reads, creates, patches
    # Once a day, and the RayJob's deadline is shorter than a day, so two runs never overlap.
    minute, hour, *rest = spec["schedule"].split()
    assert minute.isdigit() and hour.isdigit() and rest == ["*", "*", "*"]
    (job,) = by_kind("RayJob")
    assert job["spec"]["activeDeadlineSeconds"] < 24 * 3600


def render(job_name: str, out: Path) -> subprocess.CompletedProcess:
    """Run the CronJob's render step as the pod would, against infra/k8s/rayjob.yaml."""
    (cron,) = by_kind("CronJob")
    (init,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"]
    env = {e["name"]: e.get("value") for e in init["env"]}
    assert env["TEMPLATE"] == "/template/rayjob.yaml" and env["OUT"].startswith("/work/")
    return subprocess.run(init["command"], env={"PATH": "/usr/bin:/bin", "JOB_NAME": job_name,
                                                "TEMPLATE": str(K8S / "rayjob.yaml"), "OUT": str(out)},
                          capture_output=True, text=True, timeout=30)


def test_each_scheduled_time_renders_one_deterministic_rayjob_name(tmp_path):
    slot = int(datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc).timestamp()) // 60
    template = yaml.safe_load((K8S / "rayjob.yaml").read_text())
    names = []
    for attempt, minute in enumerate([slot, slot, slot + 24 * 60]):
        out = tmp_path / f"rayjob-{attempt}.yaml"
        done = render(f"roomtone-nightly-{minute}", out)
        assert done.returncode == 0, done.stderr
        rendered = yaml.safe_load(out.read_text())
        name = rendered["metadata"].pop("name")
        assert rendered == {**template, "metadata": {k: v for k, v in template["metadata"].items() if k != "name"}}
        VALIDATORS["RayJob"].validate({**rendered, "metadata": {**rendered["metadata"], "name": name}})
        names.append(name)
    # A retried pod of the same Job renders the same name; the next night gets its own.
    assert names == ["roomtone-nightly-20261124-0200", "roomtone-nightly-20261124-0200",
                     "roomtone-nightly-20261125-0200"]
    refused = render("roomtone-nightly-manual", tmp_path / "x.yaml")
    assert refused.returncode != 0 and "scheduled minute" in refused.stderr


def test_kustomization_builds_the_template_the_cronjob_mounts():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert all((K8S / r).is_file() for r in kust["resources"])
    listed = set(kust["resources"]) | {f for g in kust["configMapGenerator"] for f in g["files"]}
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    (gen,) = kust["configMapGenerator"]
    assert gen["files"] == ["rayjob.yaml"] and kust["generatorOptions"]["disableNameSuffixHash"] is True
    (cron,) = by_kind("CronJob")
    volumes = {v["name"]: v for v in cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["template"]["configMap"]["name"] == gen["name"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed (the checks above cover it)")
def test_kubectl_kustomize_builds_every_object_and_the_rayjob_template():
    """kustomize runs offline; the template it generates must be rayjob.yaml byte for byte."""
    done = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    built = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert all(d["metadata"]["namespace"] == "roomtone" for d in built)
    assert sorted(d["kind"] for d in built) == sorted([d["kind"] for _, d in k8s_objects()
                                                       if d["kind"] != "RayJob"] + ["ConfigMap"])
    template = next(d for d in built if d["metadata"]["name"] == "roomtone-rayjob-template")
    assert template["data"] == {"rayjob.yaml": (K8S / "rayjob.yaml").read_text()}


def test_the_podmonitor_scrapes_the_metrics_port_of_every_ray_pod():
    (monitor,) = by_kind("PodMonitor")
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["metrics"]
    wanted = monitor["spec"]["selector"]["matchLabels"]
    for where, spec in ray_cluster_specs():
        for g in groups(spec):
            labels = {**g["template"]["metadata"]["labels"], "ray.io/is-ray-node": "yes"}  # KubeRay adds the last
            assert wanted.items() <= labels.items(), where


def test_dockerfile_builds_cpu_gpu_and_gpurir_targets_as_a_non_root_user():
    stages = {alias: base for base, alias in re.findall(r"^FROM (\S+) AS (\S+)$", DOCKERFILE, re.M)}
    assert {"wheel", "cpu", "gpu", "gpurir"} <= set(stages)
    assert stages["gpurir"] == "gpu" and re.findall(r"^FROM (\S+)$", DOCKERFILE, re.M) == ["gpu"]  # default: GPU
    assert f"-t {IMAGE} ." in DOCKERFILE and f"--target cpu -t {CPU_IMAGE} ." in DOCKERFILE
    assert set(re.findall(r'org.opencontainers.image.version="([^"]+)"', DOCKERFILE)) == {VERSION}
    # torch first, pinned as infra/dev.sh pins it, then the project wheel, in both runtime stages.
    dev_torch = re.search(r"pip install -q torch==(\S+)", (INFRA / "dev.sh").read_text()).group(1)
    assert re.search(r"ARG TORCH_VERSION=(\S+)", DOCKERFILE).group(1) == dev_torch
    for target in ("cpu", "gpu"):
        body = DOCKERFILE.split(f" AS {target}\n", 1)[1].split("\nFROM ", 1)[0]
        assert body.index('"torch==${TORCH_VERSION}"') < body.index("roomtone-*.whl"), target
        assert "--index-url \"https://download.pytorch.org/whl/${TORCH_VARIANT}\"" in body, target
        assert re.findall(r"^USER (\S+)$", body, re.M) == ["ray"], target
    # The wheel stage copies every package pyproject ships, and only paths that exist.
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = re.findall(r"^COPY --chown=ray:users (\S+) (\S+)$", DOCKERFILE, re.M)
    assert packages <= {src for src, _ in copied}
    for line in re.findall(r"^COPY (?!--from)(?:--chown=\S+ )?(.+)$", DOCKERFILE, re.M):
        for src in line.split()[:-1]:
            assert (REPO / src).exists(), src


def test_the_laptop_stack_wires_ray_minio_postgres_mlflow_prometheus_and_grafana():
    c = compose()
    services = c["services"]
    assert set(services) >= {"ray-head", "ray-worker", "minio", "minio-init", "postgres", "mlflow", "prometheus",
                             "grafana"}
    for name in ("ray-head", "ray-worker", "mlflow"):
        s = services[name]
        assert s["image"] == CPU_IMAGE, name
        assert s["build"] == {"context": "../..", "dockerfile": "infra/Dockerfile", "target": "cpu"}, name
        check_settings(f"compose {name}", {k: v for k, v in s["environment"].items() if not k.startswith("RAY_")})
    for name in ("ray-head", "ray-worker"):
        assert f"--metrics-export-port={METRICS_PORT}" in services[name]["command"], name
    assert "--dashboard-port=8265" in services["ray-head"]["command"]
    for name, s in services.items():
        for dep in s.get("depends_on", {}):
            assert dep in services, (name, dep)
        for port in s.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
        for vol in s.get("volumes", []):
            src = vol.split(":")[0]
            assert src in c["volumes"] or (INFRA / "compose" / src).exists(), (name, vol)
    # Prometheus reads Ray's service-discovery file from the head's /tmp/ray (a shared volume).
    prom = yaml.safe_load((INFRA / "compose" / "prometheus.yml").read_text())
    (sd,) = [f for job in prom["scrape_configs"] for cfg in job["file_sd_configs"] for f in cfg["files"]]
    assert sd == "/tmp/ray/session_latest/prom_metrics_service_discovery.json"
    assert "ray-tmp:/tmp/ray" in services["ray-head"]["volumes"]
    assert "ray-tmp:/tmp/ray:ro" in services["prometheus"]["volumes"]
    # Postgres holds the catalog database and MLflow's, which the init SQL creates.
    assert services["postgres"]["environment"]["POSTGRES_DB"] == "roomtone"
    assert "CREATE DATABASE mlflow" in (INFRA / "compose" / "postgres-init.sql").read_text()
    assert "@postgres:5432/mlflow" in services["mlflow"]["command"]
    # Grafana is provisioned with the Prometheus datasource and infra/grafana's dashboard.
    provisioning = INFRA / "compose" / "grafana" / "provisioning"
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"])
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yaml").read_text())["providers"]
    assert mounts["../grafana"] in {p["options"]["path"] for p in providers}


def test_compose_passwords_come_from_the_env_file_which_git_ignores():
    text = (INFRA / "compose" / "docker-compose.yaml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = dict(line.split("=", 1) for line in (INFRA / "compose" / "env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert required and required <= set(example)
    assert all(example[k].startswith("change-me") for k in required if "PASSWORD" in k)
    assert ".env" in (INFRA / "compose" / ".gitignore").read_text().split()


def test_the_aws_cluster_launcher_config_runs_the_image_with_cpu_and_gpu_workers():
    cfg = aws()
    assert cfg["provider"]["type"] == "aws" and cfg["docker"]["image"] == IMAGE
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types and {"cpu", "gpu"} <= set(types)
    assert sum(t.get("max_workers", 0) for n, t in types.items() if n != cfg["head_node_type"]) <= cfg["max_workers"]
    for name, t in types.items():
        assert t["node_config"]["InstanceType"], name
        if name != cfg["head_node_type"]:
            assert 0 <= t["min_workers"] <= t["max_workers"], name
    assert "--gpus all" in types["gpu"]["docker"]["worker_run_options"]
    env = dict(opt.removeprefix("--env ").split("=", 1) for opt in cfg["docker"]["run_options"]
               if opt.startswith("--env "))
    check_settings("aws docker.run_options", env)
    assert not set(env) & CREDENTIALS
    for cmd in cfg["head_start_ray_commands"][1:] + cfg["worker_start_ray_commands"][1:]:
        assert f"--metrics-export-port={METRICS_PORT}" in cmd


def expressions(dash: dict) -> list[str]:
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    return exprs + [v["query"]["query"] for v in dash["templating"]["list"] if v["type"] == "query"]


ALLOWED_METRICS = ({f"ray_roomtone_{c}_total" for c in COUNTERS}
                   | {f"ray_roomtone_stage_seconds_{s}" for s in ("bucket", "sum", "count")})


def test_dashboard_queries_only_roomtone_metrics_and_chart_every_one():
    assert set(COUNTERS) == {"items", "audio_seconds", "rirs", "shards", "bytes_written", "quarantined"}, \
        "pipelines.metrics changed its counters: chart the new ones in infra/grafana/roomtone-dashboard.json"
    dash = dashboard()
    used = set()
    for expr in expressions(dash):
        # Metric names are the identifiers that open a selector or a label_values() argument.
        names = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|,\s*\w+\)$)", expr))
        assert names and names <= ALLOWED_METRICS, expr
        used |= names
    assert used == ALLOWED_METRICS


def test_dashboard_filters_every_panel_by_pipeline_stage_and_run():
    dash = dashboard()
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert {"datasource", "pipeline", "stage", "run"} <= set(variables)
    assert all(variables[v]["includeAll"] and variables[v]["multi"] for v in ("pipeline", "stage", "run"))
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    for p in panels:
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        for t in p["targets"]:
            assert all(f'{k}=~"${k}"' in t["expr"] for k in ("pipeline", "stage", "run")), p["title"]
    # Panels tile the 24-column grid without overlapping.
    cells = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        new = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & new, p["title"]
        cells |= new
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])


SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "password in a URL": re.compile(r"\w+://[^/\s:@$]+:[^@\s/$]+@"),
    # NAME: value or NAME=value for a secret-looking name, unless the value is an
    # interpolation ($...), a <placeholder>, a change-me placeholder or empty.
    "literal secret": re.compile(r"(?<![{$])\b[A-Z0-9_]*(?:PASSWORD|SECRET|TOKEN|ACCESS_KEY)[A-Z0-9_]*\s*[:=][ \t]*"
                                 r"(?![\"']?(?:\$|<|change-me|$|[\"']|\{\{))\S+", re.M),
}


def secrets_in(text: str) -> list[str]:
    return [name for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)]


def test_the_secret_scan_finds_planted_secrets():
    assert secrets_in("key: AKIAIOSFODNN7EXAMPLE") == ["AWS access key id"]
    assert secrets_in("uri: postgresql+psycopg2://roomtone:hunter2@db/roomtone") == ["password in a URL"]
    assert secrets_in("  AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG") == ["literal secret"]
    assert secrets_in("ENV PGPASSWORD=hunter2") == ["literal secret"]
    assert secrets_in("PGPASSWORD: ${POSTGRES_PASSWORD:?set it}\nMINIO_ROOT_PASSWORD=change-me-minio") == []


def test_no_file_in_infra_holds_a_secret():
    files = [p for p in INFRA.rglob("*") if p.is_file()]
    assert any(p.name == "Dockerfile" for p in files)
    for path in files:
        assert secrets_in(path.read_text()) == [], path
    for _, doc in k8s_objects():
        assert doc["kind"] != "Secret", "Secrets are created by the platform, never committed"
    assert not re.search(r"^\s*(ENV|ARG)\s+\S*(KEY|SECRET|PASSWORD|TOKEN)", DOCKERFILE, re.M)
