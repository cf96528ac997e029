"""Prometheus-style durations (`500ms`, `15s`, `1m30s`) as float seconds."""

from __future__ import annotations

import re

_UNITS = (("y", 365 * 86400.0), ("w", 7 * 86400.0), ("d", 86400.0), ("h", 3600.0),
          ("m", 60.0), ("s", 1.0), ("ms", 0.001))
_PATTERN = re.compile("".join(rf"(?:(\d+){unit})?" for unit, _ in _UNITS))


def parse_duration(value: str | float | int) -> float:
    """Seconds in a duration; YAML numbers are taken as seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"negative duration: {value!r}")
        return float(value)
    text = str(value).strip()
    if text == "0":
        return 0.0
    match = _PATTERN.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"not a duration: {value!r}")
    return sum(int(n) * factor for n, (_, factor) in zip(match.groups(), _UNITS, strict=True) if n)
