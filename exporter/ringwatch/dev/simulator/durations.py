"""Durations in scenario files: Prometheus-style text (`500ms`, `1m30s`, parsed by
ringwatch's own `config.parse_duration`), or a plain YAML number of seconds."""

from __future__ import annotations

from ringwatch.config import parse_duration as parse_duration_text


def parse_duration(value: str | float | int) -> float:
    """Seconds in a duration; YAML numbers are taken as seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"negative duration: {value!r}")
        return float(value)
    return parse_duration_text(str(value).strip())
