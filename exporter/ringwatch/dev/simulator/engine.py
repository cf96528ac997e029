"""The simulator: members of one or more Cortex rings heartbeating into a table.

One background thread writes for every member, in due order, so writes never
race each other (moto's transactions are not thread-safe). A member's life,
as Cortex writes it: `register` (PENDING, no tokens, version 1) -> `pending`
(ACTIVE with tokens after `activate_after`) -> `active` (one write per
heartbeat). `leaving` heartbeats as LEAVING until its time is up, then deletes
the item and goes on to `after_leave`: `absent`, `register` or
`register-joining` (JOINING with tokens, then heartbeats as JOINING).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ringwatch.cortex.encode import encode_desc
from ringwatch.dev.simulator.actions import (
    ACTIONS,
    DEFAULT_LEAVE_SECONDS,
    DEFAULT_RESTART_LEAVE_SECONDS,
    ActionError,
    ScenarioAction,
    parse_params,
)
from ringwatch.dev.simulator.items import (
    CASConflict,
    cas_put,
    delete_member,
    make_client,
    read_version,
)
from ringwatch.dev.simulator.tokens import TokenPool

log = logging.getLogger("ringwatch.simulator")

PRESENT_PHASES = ("pending", "active", "joining", "leaving")


def zone_name(index: int) -> str:
    """The name of zone number `index`: zone-a, zone-b, ..., then zone-26, zone-27."""
    return f"zone-{chr(ord('a') + index)}" if index < 26 else f"zone-{index}"


@dataclass
class SimConfig:
    """What to simulate: the ring, its members, their heartbeat and the table."""

    table: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    ring_keys: tuple[str, ...] = ("collectors/ring",)
    members: int = 12
    tokens: int = 128
    heartbeat_period: float = 5.0
    zones: int = 3
    member_prefix: str = "ingester-"
    ttl: float | None = None
    create_table: bool = False
    seed: int | None = None
    activate_after: float | None = None  # PENDING -> ACTIVE; default min(1 s, period)
    scenario: list[ScenarioAction] = field(default_factory=list)
    control_listen_address: str | None = None  # host:port on loopback; None = no endpoint
    connect_timeout: float = 2.0
    read_timeout: float = 2.0
    max_attempts: int = 2

    def validate(self) -> None:
        """Raise ValueError naming the first setting that makes no sense."""
        if not self.table:
            raise ValueError("dynamodb.table: required")
        if not self.ring_keys:
            raise ValueError("ring.key: at least one ring")
        if self.members < 0:
            raise ValueError(f"members: must be >= 0, got {self.members}")
        if self.tokens < 0:
            raise ValueError(f"tokens: must be >= 0, got {self.tokens}")
        if self.heartbeat_period <= 0:
            raise ValueError(f"heartbeat.period: must be > 0, got {self.heartbeat_period}")
        if self.zones < 0:
            raise ValueError(f"zones: must be >= 0, got {self.zones}")


@dataclass
class SimMember:
    """One simulated ring member: its registration, state, tokens and CAS version."""

    ring: str
    name: str
    zone: str
    addr: str
    tokens: list[int]
    phase: str = "register"
    state: str = "ABSENT"  # state of the item as last written
    version: int | None = None  # last written; None = unknown, read before the next write
    registered_timestamp: int = 0
    last_heartbeat: int | None = None
    frozen: bool = False
    killed: bool = False
    next_due: float | None = None  # monotonic; None = nothing to write
    activate_at: float = 0.0
    leave_until: float = 0.0
    after_leave: str = "absent"
    gen: int = 0  # bumped by every action, so a write in flight does not undo it
    writing: bool = False
    writes_ok: int = 0
    writes_failed: int = 0
    cas_conflicts: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The member as the control endpoint reports it."""
        return {
            "ring": self.ring,
            "member": self.name,
            "state": self.state,
            "phase": "killed" if self.killed else self.phase,
            "zone": self.zone,
            "addr": self.addr,
            "tokens": len(self.tokens) if self.state not in ("ABSENT", "PENDING") else 0,
            "version": self.version,
            "registered_timestamp": self.registered_timestamp,
            "last_heartbeat": self.last_heartbeat,
            "frozen": self.frozen,
            "killed": self.killed,
            "writing": self.writing,
            "writes_ok": self.writes_ok,
            "writes_failed": self.writes_failed,
            "cas_conflicts": self.cas_conflicts,
            "last_error": self.last_error,
        }


@dataclass
class _Step:
    kind: str  # "put" or "delete"
    due: float
    gen: int
    state: str = ""
    data: bytes = b""
    expected: int | None = None
    timestamp: int = 0
    ttl: int | None = None


class RingSimulator:
    """Simulated Cortex ring members writing into a DynamoDB table.

    sim = RingSimulator(SimConfig(table="cortex-ring", endpoint_url=url, members=12))
    sim.start(); sim.freeze("ingester-3"); sim.members(); sim.stop()
    """

    def __init__(self, config: SimConfig, client: Any = None) -> None:
        config.validate()
        self.config = config
        self.period = config.heartbeat_period
        self.activate_after = (
            config.activate_after if config.activate_after is not None else min(1.0, self.period)
        )
        self._client = client
        self._rng = random.Random(config.seed)
        self._pools = {ring: TokenPool(self._rng) for ring in config.ring_keys}
        self._members: dict[tuple[str, str], SimMember] = {}
        self._addrs: dict[str, str] = {}
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._scenario_thread: threading.Thread | None = None
        self._control: Any = None
        self._table_ready = not config.create_table
        self.started_at: float | None = None
        for ring in config.ring_keys:
            for i in range(config.members):
                self._new_member(ring, f"{config.member_prefix}{i}", self._default_zone(i))
        self._check_scenario(config.scenario)

    # --- construction helpers -------------------------------------------------------------

    def _default_zone(self, index: int) -> str:
        return zone_name(index % self.config.zones) if self.config.zones else ""

    def _addr(self, name: str) -> str:
        if name not in self._addrs:
            n = len(self._addrs)
            self._addrs[name] = f"10.0.{n // 250}.{n % 250 + 1}:9095"
        return self._addrs[name]

    def _new_member(
        self, ring: str, name: str, zone: str, tokens: int | None = None, joining: bool = False
    ) -> SimMember:
        count = self.config.tokens if tokens is None else tokens
        m = SimMember(
            ring=ring,
            name=name,
            zone=zone,
            addr=self._addr(name),
            tokens=self._pools[ring].draw(count),
        )
        m.phase = "register-joining" if joining else "register"
        self._members[(ring, name)] = m
        return m

    def _check_scenario(self, actions: Iterable[ScenarioAction]) -> None:
        known = {key for key in self._members}
        for a in actions:
            rings = [a.ring] if a.ring else list(self.config.ring_keys)
            if a.ring and a.ring not in self._pools:
                raise ValueError(f"scenario: {a.action} {a.member}: unknown ring {a.ring!r}")
            if a.action == "add":
                if len(rings) > 1:
                    raise ValueError(f"scenario: add {a.member}: say which ring")
                known.add((rings[0], a.member))
                continue
            found = [r for r in rings if (r, a.member) in known]
            if not found:
                raise ValueError(f"scenario: {a.action}: unknown member {a.member!r}")
            if len(found) > 1:
                raise ValueError(f"scenario: {a.action} {a.member}: in several rings, say which")

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> RingSimulator:
        """Register every member and start heartbeating in a background thread."""
        if self._thread is not None:
            return self
        if self._client is None:
            c = self.config
            self._client = make_client(
                c.endpoint_url,
                c.region,
                connect_timeout=c.connect_timeout,
                read_timeout=c.read_timeout,
                max_attempts=c.max_attempts,
            )
        now = time.monotonic()
        self.started_at = now
        with self._cond:
            for ring_members in self._by_ring().values():
                # Spread registrations, hence heartbeats, across one period.
                for i, m in enumerate(ring_members):
                    if m.next_due is None and m.phase.startswith("register"):
                        m.next_due = now + self.period * i / max(1, len(ring_members))
        if self.config.control_listen_address:
            from ringwatch.dev.simulator.control import ControlServer

            self._control = ControlServer(self, self.config.control_listen_address)
            self._control.start()
        self._thread = threading.Thread(target=self._run, name="ringwatch-simulate", daemon=True)
        self._thread.start()
        if self.config.scenario:
            self._scenario_thread = threading.Thread(
                target=self._run_scenario,
                args=(now, list(self.config.scenario)),
                name="ringwatch-scenario",
                daemon=True,
            )
            self._scenario_thread.start()
        return self

    def stop(self, timeout: float = 6.0) -> None:
        """Stop writing (items stay as they are) and close the control endpoint."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._control is not None:
            self._control.stop()
            self._control = None
        for thread in (self._thread, self._scenario_thread):
            if thread is not None:
                thread.join(timeout)

    def __enter__(self) -> RingSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def control_url(self) -> str | None:
        """The control endpoint's URL, if it runs."""
        return self._control.url if self._control is not None else None

    # --- observation ----------------------------------------------------------------------

    def _by_ring(self) -> dict[str, list[SimMember]]:
        out: dict[str, list[SimMember]] = {ring: [] for ring in self.config.ring_keys}
        for m in self._members.values():
            out[m.ring].append(m)
        return out

    def members(self) -> list[dict[str, Any]]:
        """Every simulated member, in member order."""
        with self._cond:
            return [m.as_dict() for m in self._members.values()]

    def member(self, name: str, ring: str | None = None) -> dict[str, Any]:
        """One member by id; KeyError if unknown."""
        with self._cond:
            return self._find(name, ring).as_dict()

    # --- actions --------------------------------------------------------------------------

    def _find(self, name: str, ring: str | None) -> SimMember:
        if ring is not None:
            if ring not in self._pools:
                raise ActionError(404, f"unknown ring {ring!r}")
            m = self._members.get((ring, name))
            if m is None:
                raise ActionError(404, f"unknown member {name!r} in ring {ring!r}")
            return m
        found = [m for (_, n), m in self._members.items() if n == name]
        if not found:
            raise ActionError(404, f"unknown member {name!r}")
        if len(found) > 1:
            raise ActionError(400, f"member {name!r} is in several rings: give ring")
        return found[0]

    def act(self, member: str, action: str, ring: str | None = None, **raw: Any) -> dict[str, Any]:
        """Apply an action now; returns the member's state. Raises ActionError."""
        params = parse_params(action, raw)
        with self._cond:
            if action == "add":
                m = self._add(member, ring, params)
            else:
                m = self._find(member, ring)
                getattr(self, "_do_" + action.replace("-", "_"))(m, params)
            if action not in ("freeze", "thaw"):  # these pause the plan, they do not change it
                m.gen += 1
            self._cond.notify_all()
            log.info("action %s on %s/%s", action, m.ring, m.name)
            return m.as_dict()

    def _add(self, name: str, ring: str | None, params: dict[str, Any]) -> SimMember:
        if ring is None:
            if len(self._pools) > 1:
                raise ActionError(400, "add: give ring (the simulator writes several)")
            ring = next(iter(self._pools))
        if ring not in self._pools:
            raise ActionError(404, f"unknown ring {ring!r}")
        if (ring, name) in self._members:
            raise ActionError(409, f"member {name!r} already exists in ring {ring!r}")
        count = sum(1 for r, _ in self._members if r == ring)
        zone = params.get("zone", self._default_zone(count))
        joining = params.get("join_stuck", False)
        m = self._new_member(ring, name, zone, params.get("tokens"), joining)
        m.next_due = time.monotonic()
        return m

    def _do_freeze(self, m: SimMember, params: dict[str, Any]) -> None:
        if m.killed:
            raise ActionError(409, f"{m.name} is killed")
        m.frozen = True

    def _do_thaw(self, m: SimMember, params: dict[str, Any]) -> None:
        if m.frozen:
            m.frozen = False
            if m.next_due is not None:
                m.next_due = time.monotonic()

    def _do_kill(self, m: SimMember, params: dict[str, Any]) -> None:
        m.killed, m.frozen, m.next_due = True, False, None

    def _start_leaving(self, m: SimMember, seconds: float, after: str) -> None:
        now = time.monotonic()
        m.phase, m.after_leave, m.leave_until, m.next_due = "leaving", after, now + seconds, now

    def _do_leave(self, m: SimMember, params: dict[str, Any]) -> None:
        if m.killed:
            raise ActionError(409, f"{m.name} is killed: a ghost cannot leave (restart it)")
        if m.phase not in PRESENT_PHASES:
            raise ActionError(409, f"{m.name} is not in the ring")
        self._start_leaving(m, params.get("duration", DEFAULT_LEAVE_SECONDS), "absent")

    def _reregister(self, m: SimMember, params: dict[str, Any], phase: str) -> None:
        # A new process: whatever the old one was doing is over.
        m.killed = m.frozen = False
        if m.phase in PRESENT_PHASES or m.state != "ABSENT":
            self._start_leaving(m, params.get("duration", DEFAULT_RESTART_LEAVE_SECONDS), phase)
        else:
            m.phase, m.next_due = phase, time.monotonic()

    def _do_restart(self, m: SimMember, params: dict[str, Any]) -> None:
        self._reregister(m, params, "register")

    def _do_join_stuck(self, m: SimMember, params: dict[str, Any]) -> None:
        self._reregister(m, params, "register-joining")

    # convenience wrappers
    def freeze(self, member: str, ring: str | None = None) -> dict[str, Any]:
        """Stop writing `member`'s heartbeat; its item stays as it is."""
        return self.act(member, "freeze", ring)

    def thaw(self, member: str, ring: str | None = None) -> dict[str, Any]:
        """Resume writing `member`'s heartbeat."""
        return self.act(member, "thaw", ring)

    def kill(self, member: str, ring: str | None = None) -> dict[str, Any]:
        """Stop `member` for good, leaving its item behind: a ghost."""
        return self.act(member, "kill", ring)

    def leave(
        self, member: str, duration: float | str = DEFAULT_LEAVE_SECONDS, ring: str | None = None
    ) -> dict[str, Any]:
        """Write LEAVING, wait `duration`, then delete the item."""
        return self.act(member, "leave", ring, duration=duration)

    def restart(
        self,
        member: str,
        duration: float | str = DEFAULT_RESTART_LEAVE_SECONDS,
        ring: str | None = None,
    ) -> dict[str, Any]:
        """Leave, then register again as PENDING, then ACTIVE with new tokens."""
        return self.act(member, "restart", ring, duration=duration)

    def join_stuck(self, member: str, ring: str | None = None) -> dict[str, Any]:
        """Register `member` as JOINING and keep it there."""
        return self.act(member, "join-stuck", ring)

    def add(self, member: str, ring: str | None = None, **params: Any) -> dict[str, Any]:
        """Add a new member and start heartbeating it."""
        return self.act(member, "add", ring, **params)

    # --- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            if not self._table_ready:
                self._ensure_table()
                continue
            with self._cond:
                now = time.monotonic()
                due = [
                    m
                    for m in self._members.values()
                    if m.next_due is not None and not m.frozen and not m.killed
                ]
                m = min(due, key=lambda x: x.next_due or 0.0, default=None)
                if self._stopping.is_set():
                    return
                if m is None or (m.next_due or 0.0) > now:
                    self._cond.wait(None if m is None else (m.next_due or 0.0) - now)
                    continue
                step = self._plan(m, now)
                m.writing = True
            try:
                outcome: Any = self._execute(m, step)
            except Exception as err:  # never let one write end the simulator
                outcome = err
            with self._cond:
                m.writing = False
                self._apply(m, step, outcome)

    def _ensure_table(self) -> None:
        from ringwatch.dev.localdynamo import create_ring_table

        try:
            create_ring_table(None, self.config.table, client=self._client)
            self._table_ready = True
        except (BotoCoreError, ClientError) as err:
            log.warning("cannot create table %s (retrying): %s", self.config.table, err)
            self._stopping.wait(self.period)

    def _plan(self, m: SimMember, now: float) -> _Step:
        due = m.next_due if m.next_due is not None else now
        if m.phase == "leaving" and now >= m.leave_until:
            return _Step("delete", due, m.gen)
        wall = int(time.time())
        if m.phase in ("register", "register-joining"):
            if not m.tokens:
                m.tokens = self._pools[m.ring].draw(self.config.tokens)
            m.registered_timestamp = wall
            state = "PENDING" if m.phase == "register" else "JOINING"
        elif m.phase == "pending":
            state = "ACTIVE" if now >= m.activate_at else "PENDING"
        else:
            state = {"active": "ACTIVE", "joining": "JOINING", "leaving": "LEAVING"}[m.phase]
        data = encode_desc(
            addr=m.addr,
            timestamp=wall,
            state=state,
            tokens=[] if state == "PENDING" else m.tokens,
            zone=m.zone,
            registered_timestamp=m.registered_timestamp,
        )
        ttl = int(time.time() + self.config.ttl) if self.config.ttl is not None else None
        return _Step("put", due, m.gen, state, data, m.version, wall, ttl)

    def _execute(self, m: SimMember, step: _Step) -> tuple[int, int]:
        """(new version, condition failures seen); a delete answers (0, 0)."""
        table, client = self.config.table, self._client
        if step.kind == "delete":
            delete_member(client, table, m.ring, m.name)
            return 0, 0
        expected, conflicts = step.expected, 0
        # Like Cortex's CAS loop: on a condition failure, read the item again and retry.
        for _ in range(2):
            if expected is None:
                expected = read_version(client, table, m.ring, m.name)
            try:
                return cas_put(
                    client, table, m.ring, m.name, step.data, expected, step.ttl
                ), conflicts
            except CASConflict:
                conflicts += 1
                expected = None
        raise CASConflict(f"{m.ring}/{m.name}: version changed under us twice ({conflicts})")

    def _next_beat(self, due: float, now: float) -> float:
        nxt = due + self.period
        while nxt <= now:
            nxt += self.period
        return nxt

    def _apply(self, m: SimMember, step: _Step, outcome: Any) -> None:
        now = time.monotonic()
        current = m.gen == step.gen
        if isinstance(outcome, BaseException):
            m.writes_failed += 1
            if isinstance(outcome, CASConflict):
                m.cas_conflicts += 2  # _execute gives up after two condition failures
                m.version = None
            if m.last_error is None:
                log.warning(
                    "write of %s/%s failed (retrying every heartbeat): %s", m.ring, m.name, outcome
                )
            m.last_error = str(outcome) or type(outcome).__name__
            if current:
                m.next_due = now + self.period
            return
        if m.last_error is not None:
            log.info("write of %s/%s succeeded again", m.ring, m.name)
            m.last_error = None
        version, conflicts = outcome
        m.cas_conflicts += conflicts
        m.writes_ok += 1
        if step.kind == "delete":
            m.version, m.state = 0, "ABSENT"
            self._pools[m.ring].release(m.tokens)
            m.tokens = []
            if m.phase == "leaving":
                m.phase = m.after_leave
                m.next_due = None if m.phase == "absent" else now
            return
        m.version, m.state, m.last_heartbeat = version, step.state, step.timestamp
        if not current:
            return  # an action changed the plan while this write was in flight
        if m.phase in ("register", "register-joining"):
            m.phase = "pending" if m.phase == "register" else "joining"
            m.activate_at = now + self.activate_after
        if m.phase == "pending" and step.state == "ACTIVE":
            m.phase = "active"
        nxt = self._next_beat(step.due, now)
        if m.phase == "pending":
            nxt = min(nxt, m.activate_at)
        elif m.phase == "leaving":
            nxt = min(nxt, m.leave_until)
        m.next_due = nxt

    # --- scenario -------------------------------------------------------------------------

    def _run_scenario(self, t0: float, actions: list[ScenarioAction]) -> None:
        for a in actions:
            if self._stopping.wait(max(0.0, t0 + a.at - time.monotonic())):
                return
            try:
                self.act(a.member, a.action, a.ring, **a.params)
            except ActionError as err:
                log.warning("scenario at %gs: %s %s: %s", a.at, a.action, a.member, err)


__all__ = ["ACTIONS", "RingSimulator", "SimConfig", "SimMember", "zone_name"]
