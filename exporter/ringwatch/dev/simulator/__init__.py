"""A simulated Cortex ring for demos and tests; `ringwatch simulate` is its cli.py."""

from ringwatch.cortex.encode import encode_desc
from ringwatch.dev.simulator.actions import (
    ACTIONS,
    ActionError,
    ScenarioAction,
    load_scenario,
    parse_scenario,
)
from ringwatch.dev.simulator.engine import RingSimulator, SimConfig
from ringwatch.dev.simulator.items import (
    CAS_CONDITION,
    CASConflict,
    cas_put,
    delete_member,
    read_version,
)
from ringwatch.units import parse_duration

__all__ = [
    "ACTIONS",
    "CAS_CONDITION",
    "ActionError",
    "CASConflict",
    "RingSimulator",
    "ScenarioAction",
    "SimConfig",
    "cas_put",
    "delete_member",
    "demo_scenario_path",
    "encode_desc",
    "load_scenario",
    "parse_duration",
    "parse_scenario",
    "read_version",
]


def demo_scenario_path() -> str:
    """The packaged demo scenario (`ringwatch/dev/scenarios/demo.yaml`)."""
    from importlib.resources import files

    return str(files("ringwatch.dev") / "scenarios" / "demo.yaml")
