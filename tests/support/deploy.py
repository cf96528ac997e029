"""The Dockerfile and deploy/ as data: a Dockerfile parser and the Kubernetes objects, shared by
the tests of tests/project (Docker, Kubernetes, Alertmanager, the deploy meeting the mixin)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

# The contract's flags of `serve` and `scan` (docs/contract.md).
CONTRACT_FLAGS = frozenset(
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

# The contract's alerts (docs/contract.md).
CONTRACT_ALERTS = frozenset(
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
        "CortexRingMemberClockSkewed",  # the mixin's own, beyond the contract
        "CortexRingRolloutStalled",
        "CortexRingUnhealthyMembers",
    }
)


CONFIGMAP = "ringwatch-config"


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
    """Instructions split at each FROM."""
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        assert result, f"line {instruction.line}: {instruction.keyword} before the first FROM"
        result[-1].append(instruction)
    return result


def only(stage: list[Instruction], keyword: str) -> Instruction:
    """The one instruction of this keyword in the stage."""
    found = [i for i in stage if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the stage, found {len(found)}"
    return found[0]


def healthcheck_command(instruction: Instruction) -> list[str]:
    """HEALTHCHECK [--option=value ...] CMD [...] → the CMD's exec form."""
    options, cmd, command = instruction.value.partition("CMD ")
    assert cmd, f"line {instruction.line}: HEALTHCHECK without CMD"
    assert all(o.startswith("--") for o in options.split()), options
    return Instruction("CMD", command.strip(), instruction.line).exec_form()


def image_uid(final_stage: list[Instruction]) -> int:
    """The uid the image runs as (its last USER)."""
    user = [i for i in final_stage if i.keyword == "USER"][-1].value
    return int(user.partition(":")[0])


def deploy_files(*suffixes: str) -> list[Path]:
    """Files under deploy/ with these suffixes."""
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in suffixes)


def k8s_objects() -> Iterator[dict[str, Any]]:
    """Every object of every manifest in deploy/kubernetes."""
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                yield document


def k8s_object(kind: str, name: str | None = None) -> dict[str, Any]:
    """The one object of this kind (and name) in deploy/kubernetes."""
    found = [
        o
        for o in k8s_objects()
        if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{len(found)} objects of kind {kind} named {name}"
    return found[0]


def ringwatch_container() -> dict[str, Any]:
    """The ringwatch container of the Deployment."""
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
    """The ringwatch.yaml of the ConfigMap, parsed."""
    _, name = config_file_from_args()
    return yaml.safe_load(k8s_object("ConfigMap", CONFIGMAP)["data"][name])


def known_flags() -> list[frozenset[str]]:
    """The contract's flags, and the exporter's own list once ringwatch.config has one."""
    sources = [CONTRACT_FLAGS]
    try:
        from ringwatch import config
    except ImportError:
        return sources
    flags = getattr(config, "FLAGS", None)
    if flags is not None:
        serve_flags = (f for f in flags if not getattr(f, "scan_only", False))
        sources.append(frozenset(str(f.name).lstrip("-") for f in serve_flags))
    return sources
