"""Reading a Prometheus exposition in tests, with prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset], float]


def samples(exposition: str) -> Samples:
    """Every sample of an exposition, keyed by (name, labels)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(exposition) for s in family.samples}


def series(exposition: str, name: str) -> dict[frozenset, float]:
    """The samples of one metric, keyed by their labels."""
    return {labels: value for (n, labels), value in samples(exposition).items() if n == name}


def value(found: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, lbs), v in found.items() if n == name and want <= lbs)
