"""Reading a Prometheus exposition in tests with prometheus_client's own parser, and the
checks a dict of samples cannot make (repeated series, promtool's lint)."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset], float]


def samples(exposition: str) -> Samples:
    """Every sample of an exposition, keyed by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


def series(exposition: str, name: str) -> dict[frozenset, float]:
    """The samples of one metric, keyed by their labels."""
    return {labels: value for (n, labels), value in samples(exposition).items() if n == name}


def value(found: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, lbs), v in found.items() if n == name and want <= lbs)


def series_lines(text: str) -> list[tuple[str, frozenset[tuple[str, str]]]]:
    """Every sample line of an exposition as (name, labels), in order, repeats kept."""
    return [
        (s.name, frozenset(s.labels.items()))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def assert_no_duplicate_series(text: str) -> None:
    """Fail if any series (name and label set) appears on more than one line."""
    repeated = {key: n for key, n in Counter(series_lines(text)).items() if n > 1}
    assert not repeated, f"{len(repeated)} series appear more than once, e.g. " + ", ".join(
        f"{name}{dict(labels)} x{n}" for (name, labels), n in list(repeated.items())[:3]
    )


def promtool_check_metrics(text: str) -> str:
    """`promtool check metrics` on the exposition; its lint findings ('' if none).

    A parse error fails; lint findings (naming advice) are returned for the caller."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed"
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60
    )
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert "error" not in output.lower(), output
    return output
