# syntax=docker/dockerfile:1
# ringwatch: build the venv in one stage, ship only the venv on a slim base.
# Build: docker build -t ringwatch .
# Run:   docker run -p 10960:10960 -e AWS_REGION=eu-west-1 ringwatch serve --dynamodb.table=cortex-ring

FROM python:3.12-slim-bookworm AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/ringwatch/bin:$PATH

RUN python -m venv /opt/ringwatch

WORKDIR /src
# pyproject names README.md as the readme, so the build needs it.
COPY pyproject.toml README.md ./
COPY exporter/ exporter/

# The same install as the README: the project itself, no demo or test extras.
# DL3013 (pin pip packages) is ignored on purpose: `pip` is upgraded to the newest release as
# the README does, and `.` is the source tree, whose dependencies pyproject.toml bounds.
# hadolint ignore=DL3013
RUN pip install --upgrade pip && pip install .


FROM python:3.12-slim-bookworm

LABEL org.opencontainers.image.title="ringwatch" \
      org.opencontainers.image.description="Prometheus exporter for a Cortex hash ring stored in DynamoDB" \
      org.opencontainers.image.licenses="Apache-2.0"

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
