"""Render the ringwatch mixin: alerts, recording rules and dashboards.

    python mixin/build.py          # writes mixin/prometheus_alerts.yaml,
                                   # mixin/prometheus_rules.yaml and dashboards/*.json
    python mixin/build.py --check  # exit 1 if the committed files differ from a fresh render

From Python (the e2e suite renders with small thresholds this way):

    from build import render
    out = render({"ringDefaults": {"heartbeatStaleAfter": "5s"}})

Overrides are deep-merged into the mixin's `_config`: objects merge key by key, anything else
replaces, null included (a ring set to null in ringOverrides or rolloutStatefulSets is dropped; a
stuck-state duration set to null disables that rule).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

import _jsonnet
import yaml

MIXIN_DIR = Path(__file__).resolve().parent
REPO_DIR = MIXIN_DIR.parent
ALERTS_PATH = MIXIN_DIR / "prometheus_alerts.yaml"
RULES_PATH = MIXIN_DIR / "prometheus_rules.yaml"
DASHBOARDS_DIR = REPO_DIR / "dashboards"

_SNIPPET = """
local merge(a, b) =
  if std.isObject(a) && std.isObject(b) then
    a + { [k]: merge(if std.objectHas(a, k) then a[k] else null, b[k])
          for k in std.objectFields(b) }
  else b;
local m = (import 'mixin.libsonnet') { _config:: merge(super._config, std.extVar('overrides')) };
{
  prometheus_alerts: m.prometheusAlerts,
  prometheus_rules: m.prometheusRules,
  alertmanager_inhibit_rules: m.alertmanagerInhibitRules,
  dashboards: m.grafanaDashboards,
}
"""
# Also rendered: the Alertmanager inhibition rules beside the rules, and into the example config.
INHIBIT_PATH = MIXIN_DIR / "alertmanager_inhibit_rules.yaml"
ALERTMANAGER_CONFIG_PATH = REPO_DIR / "deploy" / "alertmanager" / "alertmanager.yml"
# The example Alertmanager config carries the rendered inhibit rules between these two lines.
INHIBIT_BEGIN = ("# BEGIN inhibit rules rendered by mixin/build.py"
                 " (mixin/alertmanager_inhibit_rules.yaml)")
INHIBIT_END = "# END inhibit rules rendered by mixin/build.py"


def render(config_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """{"prometheus_alerts": ..., "prometheus_rules": ..., "alertmanager_inhibit_rules": ...,
    "dashboards": {file name: dashboard}}."""
    out = _jsonnet.evaluate_snippet(
        "build.jsonnet",
        _SNIPPET,
        jpathdir=[str(MIXIN_DIR)],
        ext_codes={"overrides": json.dumps(config_overrides or {})},
    )
    return json.loads(out)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1 << 16,
                     allow_unicode=True)


def to_json(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def rendered_files(config_overrides: dict[str, Any] | None = None) -> dict[Path, str]:
    out = render(config_overrides)
    files = {
        ALERTS_PATH: to_yaml(out["prometheus_alerts"]),
        RULES_PATH: to_yaml(out["prometheus_rules"]),
        **inhibit_files(out["alertmanager_inhibit_rules"]),
    }
    for name, dashboard in sorted(out["dashboards"].items()):
        files[DASHBOARDS_DIR / name] = to_json(dashboard)
    return files


def check(files: dict[Path, str]) -> list[str]:
    """Problems with the committed files, each with a short diff."""
    problems = []
    for path, text in files.items():
        rel = path.relative_to(REPO_DIR)
        if not path.exists():
            problems.append(f"{rel}: missing")
            continue
        current = path.read_text()
        if current != text:
            diff = list(difflib.unified_diff(current.splitlines(), text.splitlines(),
                                             f"{rel} (committed)", f"{rel} (rendered)",
                                             lineterm="", n=1))
            shown = "\n".join(diff[:40]) + ("\n  ..." if len(diff) > 40 else "")
            problems.append(f"{rel}: differs from the jsonnet\n{shown}")
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        if path not in files:
            problems.append(f"{path.relative_to(REPO_DIR)}: not produced by the mixin any more")
    return problems


def inhibit_files(inhibit: dict[str, Any]) -> dict[Path, str]:
    """The inhibition rules beside the rules, and in deploy/alertmanager's example config."""
    files = {INHIBIT_PATH: to_yaml(inhibit)}
    if ALERTMANAGER_CONFIG_PATH.exists():
        files[ALERTMANAGER_CONFIG_PATH] = with_inhibit_rules(ALERTMANAGER_CONFIG_PATH.read_text(),
                                                             inhibit)
    return files


def with_inhibit_rules(config_text: str, inhibit: dict[str, Any]) -> str:
    """An Alertmanager config with the block between INHIBIT_BEGIN and INHIBIT_END replaced."""
    head, begin, rest = config_text.partition(INHIBIT_BEGIN + "\n")
    _, end, tail = rest.partition(INHIBIT_END + "\n")
    if not begin or not end:
        raise ValueError(f"{ALERTMANAGER_CONFIG_PATH}: no {INHIBIT_BEGIN!r} ... {INHIBIT_END!r}"
                         " block")
    return head + begin + to_yaml(inhibit) + end + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare the committed files with a fresh render; exit 1 if not equal")
    args = parser.parse_args(argv)
    files = rendered_files()
    if args.check:
        problems = check(files)
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print("rendered mixin out of date: run `python mixin/build.py`", file=sys.stderr)
            return 1
        print(f"{len(files)} rendered files up to date")
        return 0
    DASHBOARDS_DIR.mkdir(exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
