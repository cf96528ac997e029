# The checks a change must pass before the tests; CI runs `make check` first (see README).
PYTHON ?= .venv/bin/python
SOURCES := exporter tests benchmarks mixin e2e

.PHONY: check lint format-check types imports mixin-check format test

check: lint format-check types imports mixin-check

lint:
	$(PYTHON) -m ruff check $(SOURCES)

format-check:
	$(PYTHON) -m ruff format --check $(SOURCES)

types:
	$(PYTHON) -m mypy

imports:
	.venv/bin/lint-imports --config pyproject.toml

mixin-check:
	jsonnetfmt --test $$(find mixin -name '*.libsonnet' -o -name '*.jsonnet')
	$(PYTHON) mixin/build.py --check
	promtool check rules mixin/prometheus_alerts.yaml mixin/prometheus_rules.yaml

# Rewrites files: ruff's formatter, then jsonnetfmt.
format:
	$(PYTHON) -m ruff format $(SOURCES)
	jsonnetfmt -i $$(find mixin -name '*.libsonnet' -o -name '*.jsonnet')

test:
	$(PYTHON) -m pytest
