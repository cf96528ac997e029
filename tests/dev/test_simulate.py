"""`ringwatch simulate` against a real moto server on loopback."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import boto3
import pytest
from botocore.exceptions import ClientError
from support import REPO
from support.net import free_port
from support.oracle import decode_item

from ringwatch.cortex.decode import Member
from ringwatch.dev.localdynamo import LocalDynamo, create_ring_table, ensure_dummy_credentials
from ringwatch.dev.simulator import (
    CASConflict,
    RingSimulator,
    SimConfig,
    cas_put,
    demo_scenario_path,
    encode_desc,
    load_scenario,
)
from ringwatch.dev.simulator.cli import main

T = TypeVar("T")
_tables = itertools.count()


@pytest.fixture(scope="module")
def dynamo() -> Iterator[LocalDynamo]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with LocalDynamo() as db:
            yield db


@pytest.fixture(scope="module")
def ddb(dynamo: LocalDynamo) -> Any:
    return boto3.client("dynamodb", endpoint_url=dynamo.endpoint_url, region_name="us-east-1")


@pytest.fixture
def table(dynamo: LocalDynamo) -> str:
    name = f"sim-{os.getpid()}-{next(_tables)}"
    create_ring_table(dynamo.endpoint_url, name)
    return name


@pytest.fixture
def make_sim(dynamo: LocalDynamo, table: str) -> Iterator[Callable[..., RingSimulator]]:
    sims: list[RingSimulator] = []

    def make(**overrides: Any) -> RingSimulator:
        settings: dict[str, Any] = dict(
            table=table,
            endpoint_url=dynamo.endpoint_url,
            members=3,
            tokens=8,
            heartbeat_period=0.3,
            seed=42,
        )
        settings.update(overrides)
        sim = RingSimulator(SimConfig(**settings)).start()
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.stop()


def wait_for(
    fn: Callable[[], T], what: str, timeout: float = 15.0, detail: Callable[[], Any] | None = None
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"; last seen: {detail()}" if detail else ""
            pytest.fail(f"timed out after {timeout}s waiting for {what}{seen}")
        time.sleep(0.02)


def ring(ddb: Any, table: str) -> dict[str, Member]:
    items = ddb.scan(TableName=table, ConsistentRead=True)["Items"]
    return {m.name: m for m in map(decode_item, items)}


def all_active(ddb: Any, table: str, count: int) -> dict[str, Member] | None:
    members = ring(ddb, table)
    ok = len(members) == count and all(m.state == "ACTIVE" for m in members.values())
    return members if ok else None


def member_when(
    ddb: Any, table: str, name: str, pred: Callable[[Member], bool]
) -> Callable[[], Member | None]:
    def probe() -> Member | None:
        m = ring(ddb, table).get(name)
        return m if m is not None and pred(m) else None

    return probe


def not_writing(sim: RingSimulator, member: str) -> Callable[[], bool]:
    return lambda: not sim.member(member)["writing"]


def assert_still_while_peer_beats(
    ddb: Any, table: str, member: str, peer: str, beats: int = 3
) -> Member:
    before = ring(ddb, table)
    target = before[peer].version + beats
    wait_for(lambda: ring(ddb, table)[peer].version >= target, f"{peer} to heartbeat {beats}x")
    after = ring(ddb, table)[member]
    assert after.version == before[member].version
    assert after.heartbeat_timestamp == before[member].heartbeat_timestamp
    return after


def http(url: str, method: str = "GET", body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# --- item format and heartbeats -------------------------------------------------------------


def test_simulated_items_decode_as_cortex_items(make_sim, ddb, table):
    make_sim(members=3, tokens=16, zones=3)
    members = wait_for(lambda: all_active(ddb, table, 3), "3 ACTIVE members")
    raw = ddb.scan(TableName=table)["Items"]
    assert {frozenset(item) for item in raw} == {
        frozenset({"RingKey", "InstanceKey", "Data", "version"})
    }
    assert set(members) == {"ingester-0", "ingester-1", "ingester-2"}
    assert {m.ring for m in members.values()} == {"collectors/ring"}
    assert sorted(m.zone for m in members.values()) == ["zone-a", "zone-b", "zone-c"]
    all_tokens = [t for m in members.values() for t in m.tokens]
    assert len(all_tokens) == 48 and len(set(all_tokens)) == 48
    for m in members.values():
        assert m.addr.endswith(":9095")
        assert list(m.tokens) == sorted(m.tokens)
        assert 0 < m.registered_timestamp <= m.heartbeat_timestamp
        assert m.ttl is None


def test_each_heartbeat_adds_exactly_one_to_version_and_moves_timestamp(make_sim, ddb, table):
    sim = make_sim(members=2)
    first = wait_for(lambda: all_active(ddb, table, 2), "2 ACTIVE members")["ingester-0"]
    seen: list[int] = []

    def moved() -> bool:
        m = ring(ddb, table)["ingester-0"]
        seen.append(m.version)
        return m.heartbeat_timestamp > first.heartbeat_timestamp and m.version >= first.version + 4

    wait_for(moved, "timestamp and version of ingester-0 to move")
    assert seen == sorted(seen)
    sim.freeze("ingester-0")
    wait_for(not_writing(sim, "ingester-0"), "the write in flight")
    state = sim.member("ingester-0")
    # Every successful write since the item was created bumped version by exactly one.
    assert ring(ddb, table)["ingester-0"].version == state["writes_ok"] == state["version"]


def test_member_registers_pending_without_tokens_then_turns_active(make_sim, ddb, table):
    make_sim(members=1, heartbeat_period=2.0, activate_after=1.0)
    pending = wait_for(lambda: ring(ddb, table).get("ingester-0"), "the first item")
    assert (pending.state, pending.version, pending.tokens) == ("PENDING", 1, ())
    assert pending.registered_timestamp == pending.heartbeat_timestamp
    active = wait_for(
        member_when(ddb, table, "ingester-0", lambda m: m.state == "ACTIVE"), "ACTIVE"
    )
    assert active.version == 2
    assert len(active.tokens) == 8
    assert active.registered_timestamp == pending.registered_timestamp


def test_ttl_attribute_is_now_plus_ttl(make_sim, ddb, table):
    make_sim(members=1, ttl=3600.0)
    member = wait_for(lambda: ring(ddb, table).get("ingester-0"), "the first item")
    assert member.ttl is not None
    assert abs(member.ttl - (time.time() + 3600)) < 30


def test_same_seed_gives_same_tokens():
    def tokens(seed: int) -> list[int]:
        sim = RingSimulator(SimConfig(table="unused", members=2, tokens=4, seed=seed))
        return [t for m in sim._members.values() for t in m.tokens]

    assert tokens(7) == tokens(7)
    assert tokens(7) != tokens(8)


# --- CAS ------------------------------------------------------------------------------------


def _data(timestamp: int) -> bytes:
    return encode_desc(
        addr="a:1",
        timestamp=timestamp,
        state="ACTIVE",
        tokens=[1, 2],
        zone="",
        registered_timestamp=1,
    )


def test_cas_put_with_a_stale_version_is_rejected(ddb, table):
    assert cas_put(ddb, table, "r", "m", _data(10), 0) == 1
    assert cas_put(ddb, table, "r", "m", _data(11), 1) == 2
    with pytest.raises(CASConflict):
        cas_put(ddb, table, "r", "m", _data(12), 1)
    with pytest.raises(CASConflict):
        cas_put(ddb, table, "r", "m", _data(12), 0)  # "no item yet" when there is one
    stored = ring(ddb, table)["m"]
    assert (stored.version, stored.heartbeat_timestamp) == (2, 11)


def test_simulator_writes_are_conditional_on_the_version_it_read(make_sim, ddb, table):
    sim = make_sim(members=1)
    wait_for(lambda: all_active(ddb, table, 1), "ACTIVE")
    sim.freeze("ingester-0")
    wait_for(not_writing(sim, "ingester-0"), "the write in flight")
    mine = ring(ddb, table)["ingester-0"].version
    # Another writer moves the item on behind the simulator's back.
    key = {"RingKey": {"S": "collectors/ring"}, "InstanceKey": {"S": "ingester-0"}}
    ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET version = :n",
        ExpressionAttributeValues={":n": {"N": str(mine + 100)}},
    )
    sim.thaw("ingester-0")
    # A blind write would store mine + 1; a CAS write fails, re-reads and stores mine + 101.
    state = wait_for(
        lambda: (m := sim.member("ingester-0"))["version"] and m["version"] > mine + 100 and m,
        "the simulator to write past the bump",
        detail=lambda: (mine, ring(ddb, table), sim.members()),
    )
    assert state["cas_conflicts"] >= 1, state
    assert ring(ddb, table)["ingester-0"].version > mine + 100


# --- actions through the control endpoint ---------------------------------------------------


def test_freeze_stops_writes_and_thaw_resumes_them(make_sim, ddb, table):
    sim = make_sim(control_listen_address="127.0.0.1:0")
    wait_for(lambda: all_active(ddb, table, 3), "3 ACTIVE members")
    status, body = http(f"{sim.control_url}/members/ingester-0/freeze", "POST")
    assert status == 200 and body["frozen"] is True
    wait_for(not_writing(sim, "ingester-0"), "the write in flight")
    frozen = assert_still_while_peer_beats(ddb, table, "ingester-0", "ingester-1")
    assert frozen.state == "ACTIVE"
    status, body = http(f"{sim.control_url}/members/ingester-0/thaw", "POST")
    assert status == 200 and body["frozen"] is False
    wait_for(lambda: ring(ddb, table)["ingester-0"].version >= frozen.version + 2, "writes again")


def test_leave_heartbeats_as_leaving_then_deletes_the_item(make_sim, ddb, table):
    sim = make_sim(control_listen_address="127.0.0.1:0")
    wait_for(lambda: all_active(ddb, table, 3), "3 ACTIVE members")
    status, _ = http(f"{sim.control_url}/members/ingester-1/leave", "POST", {"duration": "1s"})
    assert status == 200
    leaving_versions: set[int] = set()

    def gone() -> bool:
        m = ring(ddb, table).get("ingester-1")
        if m is not None and m.state == "LEAVING":
            assert len(m.tokens) == 8
            leaving_versions.add(m.version)
        return m is None

    wait_for(gone, "the item to be deleted")
    assert len(leaving_versions) >= 2  # it kept heartbeating while LEAVING
    assert set(ring(ddb, table)) == {"ingester-0", "ingester-2"}
    status, body = http(f"{sim.control_url}/members/ingester-1")
    assert status == 200 and body["state"] == "ABSENT"


def test_kill_leaves_a_ghost_item(make_sim, ddb, table):
    sim = make_sim(control_listen_address="127.0.0.1:0")
    wait_for(lambda: all_active(ddb, table, 3), "3 ACTIVE members")
    status, body = http(f"{sim.control_url}/members/ingester-2/kill", "POST")
    assert status == 200 and body["killed"] is True
    wait_for(not_writing(sim, "ingester-2"), "the write in flight")
    ghost = assert_still_while_peer_beats(ddb, table, "ingester-2", "ingester-0")
    assert ghost.state == "ACTIVE" and len(ghost.tokens) == 8
    status, body = http(f"{sim.control_url}/members/ingester-2/leave", "POST")
    assert status == 409, body


def test_restart_registers_again_with_new_version_tokens_and_registration(make_sim, ddb, table):
    sim = make_sim(control_listen_address="127.0.0.1:0")
    old = wait_for(lambda: all_active(ddb, table, 3), "3 ACTIVE members")["ingester-0"]
    wait_for(lambda: time.time() >= old.registered_timestamp + 1, "a new second")
    old = wait_for(member_when(ddb, table, "ingester-0", lambda m: m.version >= 5), "version 5")
    status, _ = http(f"{sim.control_url}/members/ingester-0/restart?duration=600ms", "POST")
    assert status == 200
    states: list[str] = []

    def re_registered() -> Member | None:
        m = ring(ddb, table).get("ingester-0")
        states.append(m.state if m else "ABSENT")
        return m if m and m.state == "ACTIVE" and m.version < old.version else None

    new = wait_for(re_registered, "ingester-0 back ACTIVE with a new item")
    assert "LEAVING" in states
    assert new.registered_timestamp > old.registered_timestamp
    assert set(new.tokens).isdisjoint(old.tokens) and len(new.tokens) == 8
    tokens = [t for m in ring(ddb, table).values() for t in m.tokens]
    assert len(tokens) == len(set(tokens))


def test_join_stuck_registers_as_joining_and_stays_there(make_sim, ddb, table):
    sim = make_sim(control_listen_address="127.0.0.1:0")
    wait_for(lambda: all_active(ddb, table, 3), "3 ACTIVE members")
    status, _ = http(f"{sim.control_url}/members/ingester-1/join-stuck", "POST")
    assert status == 200
    joining = wait_for(
        member_when(ddb, table, "ingester-1", lambda m: m.state == "JOINING"), "JOINING"
    )
    assert len(joining.tokens) == 8
    assert joining.version <= 2  # a new item
    later = wait_for(
        member_when(ddb, table, "ingester-1", lambda m: m.version >= joining.version + 3),
        "heartbeats while JOINING",
    )
    assert later.state == "JOINING"


def test_add_puts_a_new_member_into_the_ring(make_sim, ddb, table):
    sim = make_sim(members=2, control_listen_address="127.0.0.1:0")
    status, body = http(f"{sim.control_url}/members/ingester-9/add?zone=zone-x", "POST")
    assert status == 200 and body["zone"] == "zone-x"
    added = wait_for(lambda: all_active(ddb, table, 3), "3 ACTIVE members")["ingester-9"]
    assert added.zone == "zone-x" and len(added.tokens) == 8


def test_control_endpoint_lists_members_and_refuses_bad_requests(make_sim, ddb, table):
    sim = make_sim(control_listen_address="127.0.0.1:0")
    status, body = http(f"{sim.control_url}/members")
    assert status == 200
    assert {m["member"] for m in body} == {"ingester-0", "ingester-1", "ingester-2"}
    assert {"ring", "state", "version", "frozen", "killed", "last_heartbeat"} <= set(body[0])
    assert http(f"{sim.control_url}/members/nobody/freeze", "POST")[0] == 404
    assert http(f"{sim.control_url}/members/ingester-0/explode", "POST")[0] == 400
    assert http(f"{sim.control_url}/members/ingester-0/leave?duration=soon", "POST")[0] == 400


# --- resilience and the process -------------------------------------------------------------


def test_simulator_keeps_retrying_while_the_server_is_down(dynamo, table):
    from moto.server import ThreadedMotoServer

    port = free_port()
    sim = RingSimulator(
        SimConfig(
            table=table,
            endpoint_url=f"http://127.0.0.1:{port}",
            members=1,
            tokens=4,
            heartbeat_period=0.2,
            connect_timeout=0.5,
            read_timeout=0.5,
        )
    ).start()
    try:
        wait_for(lambda: sim.member("ingester-0")["writes_failed"] >= 2, "failed writes")
        assert sim._thread is not None and sim._thread.is_alive()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()  # moto's tables live in the process, so `table` is there
        try:
            probe = boto3.client(
                "dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1"
            )
            wait_for(lambda: all_active(probe, table, 1), "writes to succeed once it is back")
        finally:
            server.stop()
    finally:
        started = time.monotonic()
        sim.stop()
        assert time.monotonic() - started < 5


def test_bad_usage_exits_2(tmp_path, capsys):
    assert main([]) == 2
    assert main(["--dynamodb.table", "t", "--heartbeat.period", "5x"]) == 2
    assert "--heartbeat.period" in capsys.readouterr().err
    assert main(["--dynamodb.table", "t", "--control.listen-address", "0.0.0.0:0"]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {at: 1s, action: explode, member: ingester-0}\n")
    assert main(["--dynamodb.table", "t", "--scenario.file", str(bad)]) == 2
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("- {at: 1s, action: freeze, member: ingester-99}\n")
    assert main(["--dynamodb.table", "t", "--members", "3", "--scenario.file", str(unknown)]) == 2
    assert "ingester-99" in capsys.readouterr().err


def test_demo_scenario_is_valid_for_twelve_members():
    actions = load_scenario(demo_scenario_path())
    RingSimulator(SimConfig(table="unused", members=12, scenario=actions))
    freeze = next(a for a in actions if a.action == "freeze")
    thaw = next(a for a in actions if a.action == "thaw" and a.member == freeze.member)
    assert 30 <= freeze.at <= 60 < thaw.at


SCENARIO = """\
- {at: 1500ms, action: freeze, member: ingester-0}
- {at: 3s, action: thaw, member: ingester-0}
- {at: 1500ms, action: leave, member: ingester-1, duration: 750ms}
- {at: 1500ms, action: kill, member: ingester-2}
- {at: 1500ms, action: restart, member: ingester-3}
- {at: 1500ms, action: join-stuck, member: ingester-4}
"""


def test_simulate_process_plays_a_scenario_and_exits_0_on_sigterm(dynamo, ddb, tmp_path):
    table = f"sim-proc-{os.getpid()}"
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ringwatch.dev.simulator.cli",
            "--dynamodb.table",
            table,
            "--dynamodb.endpoint-url",
            dynamo.endpoint_url,
            "--create-table",
            "--members",
            "6",
            "--tokens",
            "8",
            "--heartbeat.period",
            "250ms",
            "--seed",
            "3",
            "--scenario.file",
            str(scenario),
            "--control.listen-address",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "stderr").open("w"),
        text=True,
        cwd=REPO,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("control endpoint: http://127.0.0.1:"), line
        control = line.split(": ", 1)[1].strip()
        # --seed makes the first tokens known in advance.
        twin = RingSimulator(SimConfig(table=table, members=6, tokens=8, seed=3))
        first_tokens = set(twin._members[("collectors/ring", "ingester-3")].tokens)
        seen_frozen = False
        last: list[Any] = []

        def played() -> bool:
            nonlocal seen_frozen
            members = {m["member"]: m for m in http(f"{control}/members")[1]}
            seen_frozen = seen_frozen or members["ingester-0"]["frozen"]
            try:
                items = ring(ddb, table)
            except ClientError:  # the process has not created the table yet
                return False
            last[:] = [members, items]
            m3 = items.get("ingester-3")
            restarted = bool(
                m3 and m3.state == "ACTIVE" and m3.tokens and first_tokens.isdisjoint(m3.tokens)
            )
            return (
                seen_frozen
                and not members["ingester-0"]["frozen"]
                and members["ingester-0"]["writes_ok"] > 0
                and "ingester-1" not in items
                and members["ingester-1"]["state"] == "ABSENT"
                # killed at 1.5s: on a slow machine it may still have been PENDING then
                and members["ingester-2"]["killed"]
                and _state(items, "ingester-2") != "ABSENT"
                and restarted
                and _state(items, "ingester-4") == "JOINING"
                and _state(items, "ingester-5") == "ACTIVE"
            )

        wait_for(played, "the scenario to play out", timeout=25, detail=lambda: last)
        untouched = twin._members[("collectors/ring", "ingester-5")].tokens
        assert list(ring(ddb, table)["ingester-5"].tokens) == untouched  # the seed was used
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
    assert "Traceback" not in (tmp_path / "stderr").read_text()


def _state(items: dict[str, Member], name: str) -> str:
    return items[name].state if name in items else "ABSENT"


def test_ensure_dummy_credentials_never_overwrites_real_ones(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREAL")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    assert ensure_dummy_credentials() is False
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIAREAL"
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    assert ensure_dummy_credentials() is True
    assert os.environ["AWS_ACCESS_KEY_ID"] == os.environ["AWS_SECRET_ACCESS_KEY"] == "testing"


def test_create_ring_table_is_idempotent_and_keyed_like_cortex(dynamo, ddb):
    name = f"sim-create-{os.getpid()}"
    assert create_ring_table(dynamo.endpoint_url, name) is True
    assert create_ring_table(dynamo.endpoint_url, name) is False
    desc = ddb.describe_table(TableName=name)["Table"]
    assert {(k["AttributeName"], k["KeyType"]) for k in desc["KeySchema"]} == {
        ("RingKey", "HASH"),
        ("InstanceKey", "RANGE"),
    }
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
