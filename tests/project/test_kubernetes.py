"""deploy/kubernetes: the manifests parse, validate, and every name they reference exists; the
Deployment runs locked down, highly available, with the flags and config file ringwatch accepts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from support import REPO
from support.deploy import (
    CONFIGMAP,
    DOCKERFILE,
    IAM_POLICY,
    K8S,
    METRICS_PORT,
    METRICS_PORT_NAME,
    Instruction,
    config_file_from_args,
    deploy_files,
    image_uid,
    k8s_object,
    k8s_objects,
    known_flags,
    only,
    parse_dockerfile,
    ringwatch_config,
    ringwatch_container,
    stages,
)

import ringwatch

README = (REPO / "README.md").read_text()


@pytest.fixture(scope="module")
def final_stage() -> list[Instruction]:
    return stages(parse_dockerfile(DOCKERFILE.read_text()))[-1]


def test_every_yaml_and_json_in_deploy_parses() -> None:
    yamls = deploy_files(".yaml", ".yml")
    jsons = deploy_files(".json")
    assert len(yamls) >= 7 and jsons
    for path in yamls:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert documents and all(isinstance(d, dict) for d in documents), path
    for path in jsons:
        assert isinstance(json.loads(path.read_text()), dict), path
    for obj in k8s_objects():
        assert {"apiVersion", "kind"} <= obj.keys()
        assert obj["kind"] == "Kustomization" or obj["metadata"]["name"]


def test_kustomization_lists_every_manifest_and_nothing_else() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests
    kinds = {o["kind"] for o in k8s_objects()}
    assert {"Deployment", "Service", "ServiceMonitor", "ConfigMap", "ServiceAccount"} <= kinds


def test_config_file_and_args_use_only_existing_flags() -> None:
    container = ringwatch_container()
    assert container["args"][0] == "serve"
    arg_flags = {a[2:].partition("=")[0] for a in container["args"][1:]}
    assert all(a.startswith("--") for a in container["args"][1:])
    config_keys = set(ringwatch_config())
    env_flags = {
        e["name"].removeprefix("RINGWATCH_")
        for e in container.get("env", [])
        if e["name"].startswith("RINGWATCH_")
    }
    for flags in known_flags():
        assert arg_flags <= flags, arg_flags - flags
        assert config_keys <= flags, config_keys - flags
        env_names = {f.upper().replace(".", "_").replace("-", "_") for f in flags}
        assert env_flags <= env_names, env_flags - env_names
    assert "dynamodb.table" in config_keys


def test_exporter_accepts_the_deployments_args_and_config_file(tmp_path: Path) -> None:
    from ringwatch.config import load_config

    _, name = config_file_from_args()
    config_file = tmp_path / name
    config_file.write_text(k8s_object("ConfigMap", CONFIGMAP)["data"][name])
    args = [
        f"--config.file={config_file}" if a.startswith("--config.file=") else a
        for a in ringwatch_container()["args"][1:]
    ]
    config = load_config(args, environ={})
    assert config.tables == tuple(ringwatch_config()["dynamodb.table"])
    assert config.listen_host_port[1] == METRICS_PORT


def test_config_file_flag_points_into_the_mounted_configmap() -> None:
    directory, name = config_file_from_args()
    container = ringwatch_container()
    pod = k8s_object("Deployment")["spec"]["template"]["spec"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    configmap = k8s_object("ConfigMap", CONFIGMAP)
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert name in configmap["data"]


def test_metrics_port_and_its_name_agree_everywhere(final_stage: list[Instruction]) -> None:
    container = ringwatch_container()
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == (METRICS_PORT_NAME, METRICS_PORT)
    assert container["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": port["name"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": port["name"]}
    listen = ringwatch_config().get("web.listen-address", f":{METRICS_PORT}")
    assert listen.rpartition(":")[2] == str(METRICS_PORT)
    assert only(final_stage, "EXPOSE").value == str(METRICS_PORT)

    (service_port,) = k8s_object("Service")["spec"]["ports"]
    assert service_port["name"] == METRICS_PORT_NAME
    assert service_port["port"] == METRICS_PORT
    assert service_port["targetPort"] == METRICS_PORT_NAME
    endpoints = k8s_object("ServiceMonitor")["spec"]["endpoints"]
    assert [e["port"] for e in endpoints] == [METRICS_PORT_NAME]
    assert all(e.get("path", "/metrics") == "/metrics" for e in endpoints)


def test_selectors_and_service_account_reference_existing_objects() -> None:
    deployment = k8s_object("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = k8s_object("Service")
    monitor = k8s_object("ServiceMonitor")
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    service_labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()
    account = k8s_object("ServiceAccount")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", role)


def test_pod_runs_locked_down_as_the_image_user(final_stage: list[Instruction]) -> None:
    pod = k8s_object("Deployment")["spec"]["template"]["spec"]
    container = ringwatch_container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_uid(final_stage)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    limits = container["resources"]["limits"]
    assert limits["memory"].endswith("Mi") and int(limits["memory"][:-2]) >= 150
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()


def test_iam_policy_grants_only_reads_on_the_configured_ring_table() -> None:
    from moto.iam.policy_validation import IAMPolicyDocumentValidator

    text = IAM_POLICY.read_text()
    IAMPolicyDocumentValidator(text).validate()  # AWS's grammar, as moto checks it
    (statement,) = json.loads(text)["Statement"]
    assert statement["Effect"] == "Allow"
    actions = statement["Action"]
    assert sorted(actions) == ["dynamodb:DescribeTable", "dynamodb:Query", "dynamodb:Scan"]
    assert not any("*" in a for a in actions)
    resource = statement["Resource"]
    match = re.fullmatch(r"arn:aws:dynamodb:([a-z0-9-]+):(\d{12}):table/([\w.-]+)", resource)
    assert match, f"not a single table ARN (no wildcards, no indexes): {resource}"
    config = ringwatch_config()
    assert match.group(1) == config["dynamodb.region"]
    assert [match.group(3)] == config["dynamodb.table"]


# --- high availability and least privilege --------------------------------------------------


def test_two_replicas_and_a_disruption_budget_that_keeps_one() -> None:
    deployment = k8s_object("Deployment")
    assert deployment["spec"]["replicas"] >= 2
    budget = k8s_object("PodDisruptionBudget")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert 1 <= budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    spread = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    (term,) = spread["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"


def test_no_kubernetes_api_token_is_mounted() -> None:
    pod = k8s_object("Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert k8s_object("ServiceAccount")["automountServiceAccountToken"] is False


CORE_GROUPS = ("apps", "policy", "networking.k8s.io")


def _core(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects of Kubernetes' own API groups (not the Prometheus Operator's CRDs)."""
    return [
        o
        for o in objects
        if "/" not in o["apiVersion"] or o["apiVersion"].split("/")[0] in CORE_GROUPS
    ]


def test_core_objects_validate_strictly_against_the_kubernetes_schemas() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    core = _core(list(k8s_objects()))
    assert {o["kind"] for o in core} >= {
        "Deployment",
        "Service",
        "ConfigMap",
        "ServiceAccount",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    for obj in core:
        # Raises ValidationError on an unknown or mistyped field (--strict).
        kubernetes_validate.validate(obj, "1.30.0", strict=True)


class _KubectlYAML(yaml.SafeLoader):
    """YAML as kubectl writes it (1.2): a bare `=` (an AlertmanagerConfig matchType) is the
    string "=", not YAML 1.1's `value` tag, which PyYAML's safe loader refuses."""


_KubectlYAML.add_constructor("tag:yaml.org,2002:value", yaml.SafeLoader.construct_yaml_str)


def _kustomized() -> list[dict[str, Any]]:
    """`kubectl kustomize deploy/kubernetes`: what `kubectl apply -k` sends."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.load_all(done.stdout, Loader=_KubectlYAML) if d is not None]


def test_kustomize_builds_objects_that_validate_strictly_in_their_namespace() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    objects = _kustomized()
    namespace = yaml.safe_load((K8S / "kustomization.yaml").read_text())["namespace"]
    assert {o["metadata"].get("namespace") for o in objects} == {namespace}
    kinds = sorted(o["kind"] for o in objects)
    files = sorted(o["kind"] for o in k8s_objects() if o["kind"] != "Kustomization")
    assert kinds == files
    for obj in _core(objects):
        kubernetes_validate.validate(obj, "1.30.0", strict=True)


def test_every_object_and_pod_carries_the_recommended_labels_never_in_selectors() -> None:
    objects = _kustomized()
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "ringwatch", obj["kind"]
        assert labels["app.kubernetes.io/part-of"] == "ringwatch", obj["kind"]
        assert labels["app.kubernetes.io/version"] == ringwatch.__version__, obj["kind"]
    by_kind = {o["kind"]: o for o in objects}
    for kind in (
        "Deployment",
        "Service",
        "ServiceMonitor",
        "ServiceAccount",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ):
        assert by_kind[kind]["metadata"]["labels"]["app.kubernetes.io/component"] == "exporter"
    deployment = by_kind["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["app.kubernetes.io/version"] == ringwatch.__version__
    assert pod_labels["app.kubernetes.io/component"] == "exporter"
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.rpartition(":")[2] == ringwatch.__version__
    # A selector with the version in it could not follow an upgrade (it is immutable).
    selectors = [
        deployment["spec"]["selector"]["matchLabels"],
        by_kind["Service"]["spec"]["selector"],
        by_kind["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        by_kind["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"],
        by_kind["ServiceMonitor"]["spec"]["selector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector == {"app.kubernetes.io/name": "ringwatch"}, selector


def test_only_prometheus_may_reach_the_metrics_port() -> None:
    policy = k8s_object("NetworkPolicy")
    pod_labels = k8s_object("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": METRICS_PORT_NAME, "protocol": "TCP"}]
    (peer,) = rule["from"]  # one peer: Prometheus' pods, in Prometheus' namespace
    assert peer.keys() == {"namespaceSelector", "podSelector"}
    assert peer["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
    namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
    assert namespace == yaml.safe_load((K8S / "kustomization.yaml").read_text())["namespace"]


def _mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()
    return int(number) * (1024 if unit == "Gi" else 1)


def _benchmark_rss_mb(members: int) -> float:
    results = json.loads((REPO / "benchmarks" / "results.json").read_text())
    (found,) = [r for r in results["results"] if r["n"] == members]
    return found["figures"]["rss serve MB"]


def test_the_deployment_says_which_ring_size_its_resources_are_for_and_they_fit_it() -> None:
    """The limits are for the ring size the Deployment names, by the benchmark's peak RSS
    at that size: request at least the peak, limit at least 1.5 times it. The figures it
    gives for a bigger ring fit that one the same way."""
    text = (K8S / "deployment.yaml").read_text()
    members = int(re.search(r"Sized for up to ([\d,]+) members", text).group(1).replace(",", ""))
    resources = ringwatch_container()["resources"]
    peak_mib = _benchmark_rss_mb(members) * 1e6 / 2**20
    request = _mebibytes(resources["requests"]["memory"])
    limit = _mebibytes(resources["limits"]["memory"])
    print(f"{members} members: peak RSS {peak_mib:.0f} MiB, request {request}, limit {limit}")
    assert request >= peak_mib and limit >= 1.5 * peak_mib
    big = re.search(
        r"For up to ([\d,]+) members.*?memory (\d+Mi); limit memory (\d+Mi)", text, re.S
    )
    big_members = int(big.group(1).replace(",", ""))
    big_peak_mib = _benchmark_rss_mb(big_members) * 1e6 / 2**20
    assert _mebibytes(big.group(2)) >= big_peak_mib
    assert _mebibytes(big.group(3)) >= 1.5 * big_peak_mib
    assert "metrics.member-states: current" in text


# --- the mixin, generated into the deploy ---------------------------------------------------


def mixin_build() -> ModuleType:
    """mixin/build.py as a module."""
    sys.path.insert(0, str(REPO / "mixin"))
    import build

    return build


def test_prometheus_rule_is_the_rendered_mixin_and_passes_promtool(tmp_path: Path) -> None:
    build = mixin_build()
    rule = k8s_object("PrometheusRule")
    assert rule == build.prometheus_rule(build.render())
    monitor = k8s_object("ServiceMonitor")
    # kube-prometheus-stack selects rules and monitors by the same release label.
    assert rule["metadata"]["labels"]["release"] == monitor["metadata"]["labels"]["release"]
    groups = tmp_path / "groups.yaml"
    groups.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(groups)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    names = {r.get("alert") for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "CortexRingRolloutStalled" in names


def test_dashboards_configmap_carries_every_rendered_dashboard_for_the_grafana_sidecar() -> None:
    build = mixin_build()
    configmap = k8s_object("ConfigMap", "ringwatch-dashboards")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboards = sorted(p.name for p in (REPO / "dashboards").glob("*.json"))
    assert sorted(configmap["data"]) == dashboards
    for name, text in configmap["data"].items():
        assert json.loads(text) == json.loads((REPO / "dashboards" / name).read_text())
    assert configmap == build.dashboards_configmap(build.render())
    # `kubectl apply` keeps the whole object in an annotation, limited to 256 KiB.
    size = len(json.dumps(configmap).encode())
    print(f"dashboards ConfigMap: {size} bytes")
    assert size < 256 * 1024


# --- sizing ---------------------------------------------------------------------------------


def _series_per_member(member_states: str, ttl: bool) -> float:
    """Member series a member gets from the real decoder, builder and renderer, after enough
    scans of heartbeating members for their periods to be known."""
    from prometheus_client.parser import text_string_to_metric_families
    from support.cortexdata import load_decoded
    from support.hostile import wire_item

    from ringwatch.cortex.encode import encode_desc
    from ringwatch.dynamodb.reader import TableRead
    from ringwatch.render.exposition import Renderer
    from ringwatch.snapshot.builder import SnapshotBuilder

    members = load_decoded("healthy")["items"]
    builder, snapshot, start = SnapshotBuilder(stale_after=60), None, 1_795_669_453
    for scan in range(8):
        items = []
        for m in members:
            desc = m["instance"]
            data = encode_desc(
                addr=desc["addr"],
                timestamp=start + 5 * scan,
                state=desc["state"],
                tokens=desc["tokens"],
                zone=desc["zone"],
                registered_timestamp=desc["registered_timestamp"],
            )
            items.append(
                wire_item(
                    m["RingKey"], m["InstanceKey"], data, 10 + scan, start + 3600 if ttl else None
                )
            )
        read = TableRead(
            table="t", started_at=0.0, duration=0.0, items=items, result="success", error=None
        )
        snapshot = builder.build([read], snapshot, start + 5 * scan + 1.0)
    text = Renderer(member_states).render(snapshot.tables).decode()
    samples = [
        s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("ringwatch_member_")
    ]
    return len(samples) / len(members)


def test_the_sizing_tables_series_per_member_are_what_a_render_gives() -> None:
    sizing = README[README.index("### Sizing") : README.index("### Packaging and the image")]
    every = _series_per_member("all", ttl=False)
    current = _series_per_member("current", ttl=False)
    print(
        f"series a member: all {every}, current {current}, "
        f"all with ttl {_series_per_member('all', ttl=True)}"
    )
    assert (
        f"`--metrics.member-states all`: {every:.0f} a member once its heartbeat period is "
        f"known, {every - 1:.0f} before, +1 with `ttl`" in sizing
    )
    assert f"`--metrics.member-states current` ({current:.0f} a member)" in sizing
    assert _series_per_member("all", ttl=True) == every + 1
    for members, total in ((750, "12,750"), (10_000, "170,000"), (50_000, "850,000")):
        assert f"{members * every:,.0f}" == total
        assert total in sizing
