# syntax=docker/dockerfile:1
# ringwatch: build the venv in one stage, ship only the venv on a slim base.
# Build: docker build -t ringwatch:0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
# Run:   docker run -p 10960:10960 -e AWS_REGION=eu-west-1 ringwatch serve --dynamodb.table=cortex-ring

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
    PATH=/opt/ringwatch/bin:$PATH

RUN python -m venv /opt/ringwatch

WORKDIR /src
# pyproject names README.md as the readme and LICENSE as its license file: the build needs both.
COPY pyproject.toml README.md LICENSE ./
COPY exporter/ exporter/
RUN echo "${REVISION}" > exporter/ringwatch/REVISION

# The same install as the README: the project itself, no demo or test extras.
# DL3013 (pin pip packages) is ignored on purpose: `pip` is upgraded to the newest release as
# the README does, and `.` is the source tree, whose dependencies pyproject.toml bounds.
# hadolint ignore=DL3013
RUN pip install --upgrade pip && pip install .


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

RUN groupadd --system --gid 65532 ringwatch \
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
