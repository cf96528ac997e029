"""Packaging: the license pyproject claims is the file shipped, the metadata is complete, every
dependency is bounded, extras install without pip walking through releases, and one version is
reported everywhere."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
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
    pythons = [
        c.rsplit(" ", 1)[1]
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert pythons and all(minimum.contains(f"{v}.0") for v in pythons)
    (setuptools,) = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    assert not setuptools.specifier.contains("76.9")  # SPDX license strings need 77


def test_every_runtime_dependency_has_an_upper_bound() -> None:
    for requirement in requirements():
        assert any(s.operator in ("<", "<=", "~=", "==") for s in requirement.specifier), (
            f"{requirement} has no upper bound"
        )


def test_boto3_window_is_the_botocore_range_of_the_installed_aiobotocore() -> None:
    """Without the window pip downloads every boto3 newer than aiobotocore allows, one by one."""
    (boto3,) = [r for r in requirements("demo") if r.name == "boto3"]
    aiobotocore = importlib.metadata.requires("aiobotocore") or []
    (botocore,) = [
        Requirement(r)
        for r in aiobotocore
        if Requirement(r).name == "botocore" and Requirement(r).marker is None
    ]
    installed_boto3 = importlib.metadata.version("boto3")
    assert boto3.specifier.contains(installed_boto3)
    assert {str(s) for s in boto3.specifier} == {str(s) for s in botocore.specifier}, (
        f"set the demo extra's boto3 to {botocore.specifier} (aiobotocore "
        f"{importlib.metadata.version('aiobotocore')}'s botocore range)"
    )


def test_render_extra_holds_what_mixin_build_imports() -> None:
    names = {r.name.lower() for r in requirements("render")} | {
        r.name.lower() for r in requirements()
    }
    assert {"jsonnet", "pyyaml"} <= names
    imports = set(re.findall(r"^import (\w+)", (REPO / "mixin" / "build.py").read_text(), re.M))
    assert imports - set(sys.stdlib_module_names) == {"_jsonnet", "yaml"}
    test_extra = {r.name for r in requirements("test")}
    assert "ringwatch" in test_extra and any(
        "render" in r.extras for r in requirements("test") if r.name == "ringwatch"
    )


def test_the_build_prints_no_deprecation_warning(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, tmp_path / name)
    shutil.copytree(
        REPO / "exporter",
        tmp_path / "exporter",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "REVISION"),
    )
    out = tmp_path / "out"
    out.mkdir()
    hook = (
        "import sys; from setuptools import build_meta as b; "
        "print(b.prepare_metadata_for_build_wheel(sys.argv[1]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", hook, str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
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


def _source_tree(tmp_path: Path) -> Path:
    """The files a release is built from, copied out of the checkout (no venv, caches or
    build leftovers in the repository)."""
    tree = tmp_path / "src"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy2(REPO / name, tree / name)
    shutil.copytree(
        REPO / "exporter",
        tree / "exporter",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "REVISION"),
    )
    shutil.copytree(
        REPO / "tests", tree / "tests", ignore=shutil.ignore_patterns("__pycache__", "fixtures")
    )
    return tree


def test_the_built_wheel_installs_in_a_clean_venv_and_runs(tmp_path: Path) -> None:
    """What `pip install ringwatch` gives: `python -m build` makes the sdist and the wheel,
    `twine check --strict` passes both, and the wheel alone, in a fresh venv without extras,
    runs `ringwatch --version` and `ringwatch demo --help`."""
    tree, dist = _source_tree(tmp_path), tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(tree)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = dist.glob("ringwatch-*-py3-none-any.whl")
    (sdist,) = dist.glob("ringwatch-*.tar.gz")
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "ringwatch/py.typed" in names
    assert "ringwatch/dev/scenarios/demo.yaml" in names
    assert not any(n.startswith("tests/") for n in names)
    with tarfile.open(sdist) as archive:
        members = {name.partition("/")[2] for name in archive.getnames()}
    assert "exporter/ringwatch/py.typed" in members and "LICENSE" in members
    assert not any(m.startswith("tests/") for m in members), "the sdist ships stray tests"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    command = venv / "bin" / "ringwatch"
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    version = subprocess.run(
        [str(command), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith(f"ringwatch {ringwatch.__version__} "), version.stdout
    demo = subprocess.run(
        [str(command), "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert demo.returncode == 0, demo.stderr
    assert "usage: ringwatch demo" in demo.stdout
    print(
        f"wheel {wheel.stat().st_size} bytes, sdist {sdist.stat().st_size} bytes; "
        f"{version.stdout.strip()}"
    )


def test_the_package_says_it_is_typed() -> None:
    assert "Typing :: Typed" in PROJECT["classifiers"]
    assert (REPO / "exporter" / "ringwatch" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["ringwatch"]
