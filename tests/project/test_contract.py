"""docs/contract.md names only what exists: every flag it promises is taken by `serve` or
`scan` (with its environment variable), every series is exported, every alert is in the
mixin, every decode-error reason is the decoder's. A rename breaks this test first."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml
from support import REPO

from ringwatch.cortex.decode import REASONS

CONTRACT = (REPO / "docs" / "contract.md").read_text()
PACKAGE = REPO / "exporter" / "ringwatch"


def _help(command: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ringwatch", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_flag_of_the_contract_is_taken_with_its_environment_variable() -> None:
    flags = set(re.findall(r"`(--[a-z][a-z.-]+)`", CONTRACT)) - {"--version"}
    assert len(flags) >= 24, sorted(flags)
    helps = _help("serve") + _help("scan")
    for flag in sorted(flags):
        assert re.search(rf"{re.escape(flag)}\b", helps), flag
        env = "RINGWATCH_" + flag.removeprefix("--").upper().replace(".", "_").replace("-", "_")
        assert env in helps, env


def test_every_series_of_the_contract_is_exported() -> None:
    source = "".join(p.read_text() for p in PACKAGE.rglob("*.py") if "dev" not in p.parts)
    names = set(re.findall(r"`(ringwatch_[a-z_]+)`", CONTRACT))
    assert len(names) >= 27, sorted(names)
    missing = sorted(n for n in names if n not in source and n.removesuffix("_total") not in source)
    assert not missing, missing


def test_every_alert_of_the_contract_is_in_the_mixin() -> None:
    alerts = yaml.safe_load((REPO / "mixin" / "prometheus_alerts.yaml").read_text())
    names = {rule["alert"] for group in alerts["groups"] for rule in group["rules"]}
    section = CONTRACT[CONTRACT.index("## Alert names") :]
    promised = set(re.findall(r"`((?:CortexRing|CortexIngester|Ringwatch)[A-Za-z]+)`", section))
    assert len(promised) == 11
    assert promised <= names, promised - names


def test_the_decode_error_reasons_of_the_contract_are_the_decoders() -> None:
    row = next(
        line
        for line in CONTRACT.splitlines()
        if line.startswith("| `ringwatch_decode_errors_total`")
    )
    listed = re.findall(r"`([a-z_]+)`", row.split("|")[3])
    assert tuple(listed) == REASONS


def test_the_docs_cite_nothing_outside_the_repository() -> None:
    for doc in (REPO / "docs").glob("*.md"):
        text = doc.read_text()
        for absent in ("../shared", "SPEC.md", "STALE-DESIGN", "issue 6211"):
            assert absent not in text, (doc.name, absent)
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if not target.startswith("http"):
                assert (doc.parent / target).exists(), (doc.name, target)
