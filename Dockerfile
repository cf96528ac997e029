# syntax=docker/dockerfile:1
# ringwatch: build the venv in one stage, ship only the venv on a slim base with no pip.
# Build: docker build -t ringwatch:0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
# Run:   docker run --rm -p 10960:10960 -e AWS_REGION=eu-west-1 -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_SESSION_TOKEN ringwatch:0.1.0 serve --dynamodb.table=cortex-ring
# Credentials come from botocore's own chain only: above, the host's AWS_* variables passed
# through by name (never written on the command line); on EKS, IRSA's web identity token;
# on EC2 or ECS, the instance or task role. ringwatch takes none as a flag.

# The base is pinned by digest (the multi-arch index of python:3.12-slim-bookworm): a rebuild
# starts from the same bytes. Bump it on purpose, for Debian's and Python's security fixes:
#   docker buildx imagetools inspect python:3.12-slim-bookworm   (the "Digest:" line)
FROM python:3.12-slim-bookworm@sha256:782412e85d0f0984994c290652577d4018aff08145c85b262bb63dc0c7522254 AS builder

# The commit the image is built from: written into the package for ringwatch_build_info and
# --version, and into the image's labels.
ARG REVISION=unknown

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
# pyproject names README.md as the readme and LICENSE as its license file: the build needs both.
COPY pyproject.toml README.md LICENSE ./
COPY exporter/ exporter/
RUN echo "${REVISION}" > exporter/ringwatch/REVISION

# The venv the image ships is made without pip; the base image's pip installs the project
# into it from outside (`--python`), the same install as the README's `pip install .`: no
# demo or test extras. `--only-binary=:all:`: every dependency comes as a wheel, so no
# compiler or build tool is ever needed (the slim base has none, and the image gets none).
RUN python -m venv --without-pip /opt/ringwatch \
    && python -m pip --python /opt/ringwatch/bin/python install --only-binary=:all: .


FROM python:3.12-slim-bookworm@sha256:782412e85d0f0984994c290652577d4018aff08145c85b262bb63dc0c7522254

# VERSION must be ringwatch.__version__ (tests/project/test_docker.py checks the default).
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/ringwatch/ringwatch

LABEL org.opencontainers.image.title="ringwatch" \
      org.opencontainers.image.description="Prometheus exporter for a Cortex hash ring stored in DynamoDB" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.documentation="${SOURCE}#readme" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.12-slim-bookworm"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/ringwatch/bin:$PATH

# The running image can install nothing: the base image's pip (and setuptools and wheel,
# where a base has them) is removed, and with it ensurepip's bundled copy of pip.
RUN python -m pip uninstall --yes pip setuptools wheel \
    && rm -rf /usr/local/lib/python3.*/ensurepip \
    && groupadd --system --gid 65532 ringwatch \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin ringwatch

COPY --from=builder /opt/ringwatch /opt/ringwatch

USER 65532:65532

EXPOSE 10960

# The slim image has no curl, so the probe is Python's urllib. It assumes the default
# --web.listen-address; with --web.config.file (TLS or basic auth) this plain-HTTP probe
# fails: override HEALTHCHECK, or rely on the orchestrator's probes instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:10960/-/healthy', timeout=3)"]

ENTRYPOINT ["ringwatch"]
CMD ["serve"]
