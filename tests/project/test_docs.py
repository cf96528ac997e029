"""The reference (docs/reference.md) documents every flag, environment variable and metric
that exists, and the README every alert, linked to its runbook section."""

from __future__ import annotations

import inspect
import re

import yaml
from support import REPO

from ringwatch.config import FLAGS
from ringwatch.render import exposition
from ringwatch.serve import selfmetrics

ROOT = REPO
README = (ROOT / "README.md").read_text()
REFERENCE = (ROOT / "docs" / "reference.md").read_text()


def test_every_flag_and_its_environment_variable_is_in_the_reference() -> None:
    for flag in FLAGS:
        assert f"`{flag.option}" in REFERENCE, flag.option
        assert flag.env_var in REFERENCE, flag.env_var


def test_every_exported_metric_is_in_the_metrics_reference() -> None:
    sources = "".join(inspect.getsource(m) for m in (exposition, selfmetrics))
    names = set(re.findall(r"\bringwatch_[a-z_]+(?=[{ \"])", sources))
    reference = REFERENCE[REFERENCE.index("## Metrics reference") : REFERENCE.index("## Endpoints")]
    missing = sorted(
        n for n in names if n not in reference and n.removesuffix("_total") not in reference
    )
    assert not missing, missing
    assert len(names) >= 25


def test_every_alert_of_the_mixin_is_in_the_readme_and_the_runbook() -> None:
    alerts = yaml.safe_load((ROOT / "mixin" / "prometheus_alerts.yaml").read_text())
    names = {rule["alert"] for group in alerts["groups"] for rule in group["rules"]}
    runbook = (ROOT / "mixin" / "runbook.md").read_text()
    assert len(names) == 11
    for name in names:
        assert f"[{name}](mixin/runbook.md#{name.lower()})" in README, name
        assert f"## {name}" in runbook, name
