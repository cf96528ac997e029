"""Precedence as a property: for any mix of flags, environment and file, each setting comes
from the first source that has it (flag, environment, file), else its default."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ringwatch.config import FLAGS_BY_NAME, load_config

BASE = ["--dynamodb.table", "ring", "--dynamodb.region", "eu-west-1"]
SOURCES = ("flag", "env", "file")
# Valid values of a few flags of each kind: duration, whole number, choice, repeatable.
POOLS: dict[str, list[str]] = {
    "scan.timeout": ["1s", "2s", "3s"],
    "dynamodb.max-attempts": ["1", "3", "5"],
    "ring.stale-periods": ["2", "3", "7"],
    "metrics.member-states": ["all", "current"],
    "log.level": ["debug", "warn", "error"],
    "dynamodb.ring-key": ["a", "b", "c"],
}


@st.composite
def layers(draw: st.DrawFn) -> dict[str, dict[str, str]]:
    """For each flag, the value each source gives it (a source may give none)."""
    chosen: dict[str, dict[str, str]] = {}
    for name, pool in POOLS.items():
        sources = draw(st.lists(st.sampled_from(SOURCES), unique=True))
        chosen[name] = {source: draw(st.sampled_from(pool)) for source in sources}
    return chosen


def expected(name: str, by_source: dict[str, str]) -> tuple[object, str]:
    """The reference model: the first source in order, else the default."""
    flag = FLAGS_BY_NAME[name]
    for source in SOURCES:
        if source in by_source:
            value = flag.parse(by_source[source])
            return ((value,) if flag.repeatable else value), source
    if flag.default is None:
        return flag.empty, ""
    return flag.parse(flag.default), "default"


@settings(max_examples=60, deadline=None)
@given(layers())
def test_each_setting_comes_from_the_first_source_that_has_it(
    chosen: dict[str, dict[str, str]],
) -> None:
    argv, environ, document = list(BASE), {}, {}
    for name, by_source in chosen.items():
        flag = FLAGS_BY_NAME[name]
        if "flag" in by_source:
            argv += [flag.option, by_source["flag"]]
        if "env" in by_source:
            environ[flag.env_var] = by_source["env"]
        if "file" in by_source:
            document[name] = by_source["file"]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "ringwatch.yaml"
        path.write_text(yaml.safe_dump(document))
        config = load_config([*argv, "--config.file", str(path)], environ=environ)
    for name, by_source in chosen.items():
        flag = FLAGS_BY_NAME[name]
        value, source = expected(name, by_source)
        assert getattr(config, flag.field) == value, (name, by_source)
        assert config.sources.get(name, "") == source, (name, by_source)
