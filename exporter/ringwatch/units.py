"""Units read from and written for people: durations, `host:port` and booleans.

One parser and one writer of each, shared by the flags, the logs, the scan report,
the /ring page and the simulator. Imports nothing of ringwatch.
"""

from __future__ import annotations

import math
import re

_DURATION_RE = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_DURATION_UNITS_MS = (365 * 86400_000, 7 * 86400_000, 86400_000, 3600_000, 60_000, 1000, 1)
# Longer than any duration worth writing, in any units: refused before the digits are
# converted (a number of hundreds of digits would overflow a float).
MAX_DURATION_TEXT = 32


def parse_duration(value: str | int | float) -> float:
    """Seconds in a Prometheus duration (`500ms`, `15s`, `1h30m`; `0`), or in a YAML
    number, taken as seconds; ValueError otherwise (negative, too long, no unit)."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"not a duration: {value!r} (seconds, 0 or more)")
        return float(value)
    text = value.strip()
    if text == "0":
        return 0.0
    if len(text) > MAX_DURATION_TEXT:
        raise ValueError(f"not a duration: too long ({len(text)} characters)")
    match = _DURATION_RE.match(text)
    if not text or not match:
        raise ValueError(f"not a duration: {text!r} (write it like 500ms, 15s or 2m)")
    # Summed in whole milliseconds: 9ms is 0.009, not 9 * 0.001.
    milliseconds = sum(
        int(g) * unit for g, unit in zip(match.groups(), _DURATION_UNITS_MS, strict=True) if g
    )
    return milliseconds / 1000


_WRITTEN_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def format_duration(seconds: float, decimals: int = 3, parts: int | None = None) -> str:
    """Seconds as a duration with units, the zero ones left out: `250ms`, `1.234s`, `15s`,
    `2m5s`, `1h30m`, `3d4h`; negative with a `-`. Seconds keep up to `decimals` decimals;
    `parts` keeps only that many of the largest units (`parts=2`: `3h10m`)."""
    if not math.isfinite(seconds):
        return f"{seconds}s"
    sign = "-" if seconds < 0 else ""
    seconds = round(abs(seconds), decimals)
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{sign}{round(seconds * 1000, max(decimals - 3, 0)):g}ms"
    written = []
    whole = int(seconds)
    for unit, size in _WRITTEN_UNITS:
        count, whole = divmod(whole, size)
        if count:
            written.append(f"{count}{unit}")
    rest = round(whole + seconds % 1, decimals)
    if rest:
        written.append(f"{rest:g}s")
    return sign + "".join(written[:parts])


def cut_for_error(text: str, limit: int = 64) -> str:
    """`text` as an error line shows it: cut after `limit` characters, with its length."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def parse_host_port(text: str) -> tuple[str, int]:
    """`host:port` (host may be empty, meaning every address, or bracketed IPv6) ->
    (host, port), host `0.0.0.0` if empty; ValueError otherwise."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not re.fullmatch(r"[0-9]{1,5}", port_text) or int(port_text) > 65535:
        raise ValueError(
            f"not host:port: {cut_for_error(text)!r} (for example :10960 or 127.0.0.1:10960)"
        )
    host = host.strip("[]")
    return (host or "0.0.0.0", int(port_text))


def parse_bool(text: str) -> bool:
    """`true`/`false` (also 1/0, yes/no, on/off, and empty for false); ValueError otherwise."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {cut_for_error(text)!r} (use true or false)")
