"""Packaging: the license pyproject claims is the file shipped, the metadata is complete, every
dependency is bounded, extras install without pip walking through releases, and one version is
reported everywhere."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from support import REPO
from support.deploy import DOCKERFILE, k8s_object, parse_dockerfile, stages

import ringwatch
from ringwatch.cli import main, version_line

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def requirements(extra: str | None = None) -> list[Requirement]:
    texts = PROJECT["dependencies"] if extra is None else PROJECT["optional-dependencies"][extra]
    return [Requirement(t) for t in texts]


def test_license_file_is_the_apache_2_text_the_metadata_names() -> None:
    text = (REPO / "LICENSE").read_text()
    assert re.match(r"\s*Apache License\s+Version 2\.0, January 2004", text)
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert PROJECT["license"] == "Apache-2.0"  # an SPDX expression, not a table
    assert PROJECT["license-files"] == ["LICENSE"]
    # PEP 639: with a license expression, no "License ::" classifier.
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")]
    metadata = importlib.metadata.metadata("ringwatch")
    assert metadata["License-Expression"] == "Apache-2.0"


def test_metadata_has_classifiers_urls_and_a_modern_build_backend() -> None:
    metadata = importlib.metadata.metadata("ringwatch")
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL"))
    assert {"Source", "Issues", "Changelog", "Documentation"} <= urls.keys()
    classifiers = metadata.get_all("Classifier")
    assert "Topic :: System :: Monitoring" in classifiers
    minimum = SpecifierSet(PROJECT["requires-python"])
    pythons = [c.rsplit(" ", 1)[1] for c in classifiers
               if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    assert pythons and all(minimum.contains(f"{v}.0") for v in pythons)
    (setuptools,) = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    assert not setuptools.specifier.contains("76.9")  # SPDX license strings need 77


def test_every_runtime_dependency_has_an_upper_bound() -> None:
    for requirement in requirements():
        assert any(s.operator in ("<", "<=", "~=", "==") for s in requirement.specifier), (
            f"{requirement} has no upper bound")


def test_boto3_window_is_the_botocore_range_of_the_installed_aiobotocore() -> None:
    """Without the window pip downloads every boto3 newer than aiobotocore allows, one by one."""
    (boto3,) = [r for r in requirements("demo") if r.name == "boto3"]
    aiobotocore = importlib.metadata.requires("aiobotocore") or []
    (botocore,) = [Requirement(r) for r in aiobotocore if Requirement(r).name == "botocore"
                   and Requirement(r).marker is None]
    installed_boto3 = importlib.metadata.version("boto3")
    assert boto3.specifier.contains(installed_boto3)
    assert {str(s) for s in boto3.specifier} == {str(s) for s in botocore.specifier}, (
        f"set the demo extra's boto3 to {botocore.specifier} (aiobotocore "
        f"{importlib.metadata.version('aiobotocore')}'s botocore range)")


def test_render_extra_holds_what_mixin_build_imports() -> None:
    names = {r.name.lower() for r in requirements("render")} | {
        r.name.lower() for r in requirements()}
    assert {"jsonnet", "pyyaml"} <= names
    imports = set(re.findall(r"^import (\w+)", (REPO / "mixin" / "build.py").read_text(), re.M))
    assert imports - set(sys.stdlib_module_names) == {"_jsonnet", "yaml"}
    test_extra = {r.name for r in requirements("test")}
    assert "ringwatch" in test_extra and any(
        "render" in r.extras for r in requirements("test") if r.name == "ringwatch")


def test_the_build_prints_no_deprecation_warning(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "exporter", tmp_path / "exporter",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "REVISION"))
    out = tmp_path / "out"
    out.mkdir()
    hook = ("import sys; from setuptools import build_meta as b; "
            "print(b.prepare_metadata_for_build_wheel(sys.argv[1]))")
    result = subprocess.run([sys.executable, "-c", hook, str(out)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "deprecat" not in (result.stdout + result.stderr).lower(), result.stderr
    metadata = (out / result.stdout.split()[-1] / "METADATA").read_text()
    assert "License-Expression: Apache-2.0" in metadata
    assert "License-File: LICENSE" in metadata


def test_one_version_everywhere(capsys) -> None:
    version = ringwatch.__version__
    assert importlib.metadata.version("ringwatch") == version
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == version_line()
    assert version_line().startswith(f"ringwatch {version} (revision {ringwatch.revision()}")
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(r"^## \[(\S+)\]", changelog, re.M).group(1) == version
    final = stages(parse_dockerfile(DOCKERFILE.read_text()))[-1]
    args = dict(i.value.split("=", 1) for i in final if i.keyword == "ARG" and "=" in i.value)
    assert args["VERSION"] == version
    (container,) = k8s_object("Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"].rpartition(":")[2] == version


def test_revision_comes_from_the_file_a_build_writes(tmp_path: Path, monkeypatch) -> None:
    revision_file = tmp_path / "REVISION"
    revision_file.write_text("0123456789abcdef\n")
    monkeypatch.setattr(ringwatch, "_REVISION_FILE", revision_file)
    ringwatch.revision.cache_clear()
    try:
        assert ringwatch.revision() == "0123456789abcdef"
    finally:
        ringwatch.revision.cache_clear()
    package_data = PYPROJECT["tool"]["setuptools"]["package-data"]["ringwatch"]
    assert "REVISION" in package_data
