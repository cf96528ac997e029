"""Actions on simulated members, shared by the scenario file and the control endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ringwatch.units import parse_bool, parse_duration

ACTIONS = ("freeze", "thaw", "leave", "kill", "restart", "join-stuck", "add")
DEFAULT_LEAVE_SECONDS = 30.0  # Cortex's final sleep before an ingester deletes its item
DEFAULT_RESTART_LEAVE_SECONDS = 0.0

# Parameters each action accepts, besides `member` and `ring`.
_PARAMS: dict[str, tuple[str, ...]] = {
    "freeze": (),
    "thaw": (),
    "kill": (),
    "leave": ("duration",),
    "restart": ("duration",),
    "join-stuck": ("duration",),
    "add": ("zone", "tokens", "join_stuck"),
}


class ActionError(Exception):
    """A refused action; `status` is the HTTP status the control endpoint answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _bool(value: Any) -> bool:
    return value if isinstance(value, bool) else parse_bool(str(value))


def parse_params(action: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise an action's parameters (durations become seconds)."""
    if action not in _PARAMS:
        raise ActionError(400, f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    params: dict[str, Any] = {}
    for name, value in raw.items():
        key = name.replace("-", "_")
        if key not in _PARAMS[action]:
            raise ActionError(400, f"action {action} takes no parameter {name!r}")
        try:
            if key == "duration":
                params[key] = parse_duration(value)
            elif key == "tokens":
                params[key] = int(value)
                if params[key] < 0:
                    raise ValueError("negative")
            elif key == "join_stuck":
                params[key] = _bool(value)
            else:
                params[key] = str(value)
        except (TypeError, ValueError):
            raise ActionError(400, f"bad {name} for {action}: {value!r}") from None
    return params


@dataclass(frozen=True)
class ScenarioAction:
    """One timed action of a scenario: what to do to which member, when."""

    at: float  # seconds after the simulator started
    action: str
    member: str
    ring: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def parse_scenario(data: Any) -> list[ScenarioAction]:
    """A list of `{at, action, member, [ring], [params...]}`, or `{actions: [...]}`."""
    if isinstance(data, dict) and "actions" in data:
        data = data["actions"]
    if data is None:
        return []
    if not isinstance(data, list):
        raise ValueError("a scenario is a list of actions (or a mapping with `actions:`)")
    out: list[ScenarioAction] = []
    for index, entry in enumerate(data, start=1):
        where = f"scenario action {index}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: not a mapping")
        entry = dict(entry)
        try:
            at = parse_duration(entry.pop("at"))
            action = str(entry.pop("action"))
            member = str(entry.pop("member"))
        except KeyError as missing:
            raise ValueError(f"{where}: {missing.args[0]} is missing") from None
        except ValueError as err:
            raise ValueError(f"{where}: at: {err}") from None
        ring = entry.pop("ring", None)
        try:
            params = parse_params(action, entry)
        except ActionError as err:
            raise ValueError(f"{where}: {err}") from None
        out.append(ScenarioAction(at, action, member, None if ring is None else str(ring), params))
    return sorted(out, key=lambda a: a.at)


def load_scenario(path: str | Path) -> list[ScenarioAction]:
    """Read and check a YAML scenario file of timed actions."""
    with open(path, encoding="utf-8") as fh:
        return parse_scenario(yaml.safe_load(fh))
