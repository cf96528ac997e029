"""logfmt or JSON log lines on stderr, one event a line.

Every line has `ts` (RFC 3339, UTC, milliseconds), `caller` (file:line of the
call), `level` (debug, info, warn, error) and `msg`, then the event's own fields,
as Prometheus' own exporters write them (go-kit/slog): an error is `err`, a
duration or an age carries its unit (`1.234s`, `250ms`, `2m5s`, `1h`, as
`units.format_duration` writes it). Other libraries' warnings and errors come out
in the same format.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from typing import Any, TextIO

from ringwatch.units import format_duration

LOGGER = logging.getLogger("ringwatch")
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def _logfmt_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)  # true, false, null
    if isinstance(value, (int, float)):
        return repr(value)
    text = value if isinstance(value, str) else str(value)
    if text == "" or any(c in ' ="\\' or not c.isprintable() for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


# Fields given in seconds (a float) that are written with their unit.
_DURATION_KEYS = frozenset({"duration", "age", "elapsed", "timeout", "interval"})
_DURATION_SUFFIXES = ("_duration", "_age", "_timeout", "_interval")


def _is_duration(key: str, value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (key in _DURATION_KEYS or key.endswith(_DURATION_SUFFIXES))
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or Infinity
    return value


class _Formatter(logging.Formatter):
    def __init__(self, fmt: str) -> None:
        super().__init__()
        self.json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "caller": f"{record.filename}:{record.lineno}",
            "level": record.levelname.lower()
            .replace("warning", "warn")
            .replace("critical", "error"),
            "msg": record.getMessage(),
        }
        if record.name != LOGGER.name:
            fields["logger"] = record.name
        for key, value in getattr(record, "fields", {}).items():
            if key == "error":
                key = "err"
            if _is_duration(key, value):
                value = format_duration(value)
            fields[key if key not in ("ts", "caller", "level", "msg") else f"field_{key}"] = value
        if record.exc_info:
            fields["err" if "err" not in fields else "exc"] = self.formatException(record.exc_info)
        if self.json:
            return json.dumps(
                {k: _json_value(v) for k, v in fields.items()}, default=str, ensure_ascii=False
            )
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items())


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is when a line is logged, not when it was set up
    (an embedding program or a test harness may swap it, and close the old one)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def setup_logging(level: str = "info", fmt: str = "logfmt", stream: TextIO | None = None) -> None:
    """Send ringwatch's log lines to `stream` (stderr) as logfmt or JSON, at `level`."""
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(_Formatter(fmt))
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(_LEVELS[level])
    LOGGER.propagate = False
    # Libraries (aiohttp, botocore) log through the root logger: their warnings
    # and errors get the same format instead of Python's bare last-resort lines.
    root_handler: logging.StreamHandler[TextIO] = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    root_handler.setFormatter(_Formatter(fmt))
    root_handler.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "_ringwatch", False)]
    setattr(root_handler, "_ringwatch", True)  # noqa: B010  (marks ours among foreign handlers)
    root.addHandler(root_handler)


def log(level: int, msg: str, **fields: Any) -> None:
    """One event: `msg` and its fields; `caller` is the line that called this."""
    if LOGGER.isEnabledFor(level):
        LOGGER.log(level, msg, extra={"fields": fields}, stacklevel=2)


class RateLimitedLog:
    """Logs a persisting condition once, then at most every `every` seconds.

    A change of the condition's `kind` (say, timeout to throttled) is logged at
    once. `suppressed(key)` tells how many occurrences went unlogged since the
    last line, and `end(key)` (the condition is over) returns how many
    occurrences there were in all, or None if it was not active.
    """

    def __init__(self, every: float = 300.0) -> None:
        self.every = every
        self._last: dict[str, tuple[float, str | None]] = {}
        self._suppressed: dict[str, int] = {}
        self._total: dict[str, int] = {}

    def should_log(self, key: str, now: float, kind: str | None = None) -> bool:
        """True if this occurrence of `key` is to be logged: the first, a new `kind`, or
        the first after `every` seconds."""
        self._total[key] = self._total.get(key, 0) + 1
        last = self._last.get(key)
        if last is not None and now - last[0] < self.every and last[1] == kind:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = (now, kind)
        return True

    def suppressed(self, key: str) -> int:
        """Unlogged occurrences before the one just allowed; resets the count."""
        return self._suppressed.pop(key, 0)

    def end(self, key: str) -> int | None:
        """Forget `key` (its condition ended); how often it occurred, None if not active."""
        if key not in self._last:
            return None
        del self._last[key]
        self._suppressed.pop(key, None)
        return self._total.pop(key, 0)
