"""The /ring page in a real browser (headless Chromium): the
exporter runs in-process against the sigstop-45s dump with a 30 s threshold,
so ingester-2 (frozen 45 s) is stale."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from support import REPO
from support.cortexdata import FIXTURES, load_dump
from support.moto import MotoDynamo

from ringwatch.config import load_config
from ringwatch.cortex.decode import Member
from ringwatch.render.ringpage import render_page
from ringwatch.serve.main import serve
from ringwatch.snapshot.model import MemberView, RingView, Snapshot, TableView

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
SIGSTOP_AT = load_dump("sigstop-45s")["_capture"]["captured_at_unix"]


# -- a small DOM, enough to assert on ---------------------------------------
@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return " ".join(
            " ".join(c.text() if isinstance(c, Node) else c for c in self.children).split()
        )

    def find_all(self, tag: str, **attrs: str) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                # class_ -> class, data_table -> data-table
                wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
                if child.tag == tag and all(child.attrs.get(k) == v for k, v in wanted.items()):
                    found.append(child)
                found += child.find_all(tag, **attrs)
        return found

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class _TreeBuilder(HTMLParser):
    VOID = {"meta", "link", "br", "col", "img", "input", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(document: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(document)
    return builder.root


# -- the exporter and the browser -------------------------------------------
@dataclass
class Served:
    url: str
    clock: list[float]


def chromium(*args: str, user_data_dir: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM.exists(), "Debian's chromium package must be installed at /usr/bin/chromium"
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={user_data_dir}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture(scope="module")
def served(moto_dynamo: MotoDynamo) -> Iterator[Served]:
    moto_dynamo.load_dump("page-sigstop", "sigstop-45s")
    config = load_config(
        [
            "--dynamodb.table",
            "page-sigstop",
            "--dynamodb.table",
            "page-missing",
            "--dynamodb.endpoint-url",
            moto_dynamo.endpoint_url,
            "--dynamodb.region",
            "us-east-1",
            "--dynamodb.max-attempts",
            "1",
            "--ring.stale-after",
            "30s",
            "--scan.interval",
            "1m",
            "--snapshot.max-age",
            "1m",
            "--web.listen-address",
            "127.0.0.1:0",
        ],
        environ={},
    )
    clock = [SIGSTOP_AT]
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    port: list[int] = []
    result: list[int] = []

    def run() -> None:
        result.append(
            loop.run_until_complete(
                serve(
                    config,
                    stop=stop,
                    clock=lambda: clock[0],
                    on_listening=lambda host, p: port.append(p),
                )
            )
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not port or get(f"http://127.0.0.1:{port[0]}/-/ready")[0] != 200:
        assert time.monotonic() < deadline, "exporter not ready within 30 s"
        assert thread.is_alive(), "exporter exited"
        time.sleep(0.05)
    yield Served(f"http://127.0.0.1:{port[0]}", clock)
    loop.call_soon_threadsafe(stop.set)
    thread.join(timeout=10)
    assert result == [0]


@pytest.fixture(scope="module")
def dom(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Node:
    profile = tmp_path_factory.mktemp("chromium")
    page = chromium("--dump-dom", f"{served.url}/ring", user_data_dir=profile).stdout
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "ring-page.html").write_text(page)
    return parse(page)


def ring_rows(dom: Node, table: str, ring: str) -> list[Node]:
    [section] = dom.find_all("section", data_table=table)
    [ring_section] = section.find_all("section", data_ring=ring)
    return [tr for tr in ring_section.find_all("tr") if "data-member" in tr.attrs]


def test_members_are_sorted_oldest_heartbeat_first_in_every_ring(dom: Node) -> None:
    [section] = dom.find_all("section", data_table="page-sigstop")
    rings = [s.attrs["data-ring"] for s in section.find_all("section", class_="ring")]
    assert rings == [
        "collectors/compactor",
        "collectors/distributor",
        "collectors/ring",
        "collectors/store-gateway",
    ]
    rows = ring_rows(dom, "page-sigstop", "collectors/ring")
    assert [r.attrs["data-member"] for r in rows] == ["ingester-2", "ingester-1", "ingester-3"]
    ages = [float(r.find_all("td", class_="age num")[0].attrs["data-seconds"]) for r in rows]
    assert ages == sorted(ages, reverse=True)
    assert ages[0] == pytest.approx(46.287, abs=0.001)


def test_the_frozen_ingester_row_is_marked_stale_and_no_other(dom: Node) -> None:
    rows = {r.attrs["data-member"]: r for r in ring_rows(dom, "page-sigstop", "collectors/ring")}
    assert "stale" in rows["ingester-2"].classes()
    assert [b.text() for b in rows["ingester-2"].find_all("span", class_="badge stale")] == [
        "STALE"
    ]
    for name in ("ingester-1", "ingester-3"):
        assert "stale" not in rows[name].classes()
        assert "STALE" not in rows[name].text()
    [section] = dom.find_all("section", data_ring="collectors/ring")
    assert "3 members: 3 ACTIVE · 1 STALE · 384 tokens" in section.text()


def test_each_row_shows_the_period_and_the_threshold_it_was_judged_by(dom: Node) -> None:
    # One scan so far: no period learned, every member judged against the cap (30s).
    for row in ring_rows(dom, "page-sigstop", "collectors/ring"):
        [cell] = row.find_all("td", class_="period num")
        assert cell.text() == "- / 30s"
        assert cell.attrs["data-threshold"] == "30.0"
        assert "data-period" not in cell.attrs


def test_ownership_bars_are_as_wide_as_the_ownership(served: Served, dom: Node) -> None:
    document = json.loads(get(f"{served.url}/ring.json")[1])
    table = next(t for t in document["tables"] if t["table"] == "page-sigstop")
    ownership = {
        (r["ring"], m["member"]): m["ownership"] for r in table["rings"] for m in r["members"]
    }
    cortex_page = (FIXTURES / "ring-page-healthy.html").read_text()
    cortex = dict(re.findall(r"<td>(ingester-\d+)</td>.*?<td>([\d.]+)%</td>", cortex_page, re.S))
    seen = 0
    for ring in ("collectors/ring", "collectors/compactor", "collectors/store-gateway"):
        for row in ring_rows(dom, "page-sigstop", ring):
            [fill] = row.find_all("div", class_="fill")
            width = float(re.fullmatch(r"width:\s*([\d.]+)%;?", fill.attrs["style"]).group(1))
            member = row.attrs["data-member"]
            assert width == pytest.approx(ownership[(ring, member)] * 100, abs=0.005)
            if member in cortex:  # same tokens as in Cortex's own page
                assert abs(width - float(cortex[member])) < 0.01
            seen += 1
    assert seen == 5


def test_header_shows_snapshot_age_and_each_table_status(dom: Node) -> None:
    [snapshot] = dom.find_all("p", id="snapshot")
    assert "Snapshot of the scan at 2026-11-26 05:04:59Z, 0s old" in snapshot.text()
    assert (
        "stale when its heartbeat is older than 4 of its own heartbeat periods, at least "
        "20s and at most 30s (or 2 periods if longer); 30s while its period is not yet "
        "known"
    ) in snapshot.text()
    [good] = dom.find_all("section", data_table="page-sigstop")
    assert good.find_all("h2")[0].text() == "Table page-sigstop OK"
    [bad] = dom.find_all("section", data_table="page-missing")
    assert bad.find_all("h2")[0].text() == "Table page-missing LAST SCAN FAILED"
    [banner] = bad.find_all("p", class_="banner failed")
    assert "ResourceNotFoundException" in banner.text()
    assert "No successful scan yet." in bad.text()


def test_the_page_has_no_javascript_at_all(served: Served, dom: Node) -> None:
    # (Headless Chromium cannot dump or screenshot with scripts disabled, so prove it here.)
    page = get(f"{served.url}/ring")[1]
    assert dom.find_all("script") == []
    assert not re.search(r"<script|\son[a-z]+\s*=|javascript:", page, re.I)


def test_screenshot_is_written_as_a_test_artifact(
    served: Served, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "ring-page.png"
    target.unlink(missing_ok=True)
    chromium(
        f"--screenshot={target}",
        "--window-size=1280,900",
        "--hide-scrollbars",
        f"{served.url}/ring",
        user_data_dir=tmp_path_factory.mktemp("chromium"),
    )
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 900)


def test_landing_page_links_the_ring_page(served: Served) -> None:
    status, body = get(f"{served.url}/")
    assert status == 200
    assert '<a href="ring">' in body


def test_past_snapshot_max_age_members_are_hidden_and_the_page_says_why(served: Served) -> None:
    # Last: moves the shared clock; no scan runs in between (--scan.interval 1m).
    served.clock[0] = SIGSTOP_AT + 20  # within --snapshot.max-age (1m): still served
    first, second = (parse(get(f"{served.url}/ring")[1]) for _ in range(2))
    for dom in (first, second):
        assert "20s old" in dom.find_all("p", id="snapshot")[0].text()
        assert len(ring_rows(dom, "page-sigstop", "collectors/ring")) == 3
    served.clock[0] = SIGSTOP_AT + 90
    status, page = get(f"{served.url}/ring")
    dom = parse(page)
    assert status == 200
    [section] = dom.find_all("section", data_table="page-sigstop")
    [banner] = section.find_all("p", class_="banner expired")
    assert "--snapshot.max-age=1m" in banner.text()
    assert section.find_all("tr") == []
    assert "1m30s old" in dom.find_all("p", id="snapshot")[0].text()


def test_everything_from_the_ring_is_escaped() -> None:
    hostile = "<img src=x onerror=alert(1)>"
    member = Member(
        ring=hostile,
        name=hostile,
        addr=hostile,
        zone=hostile,
        state="ACTIVE",
        state_num=0,
        heartbeat_timestamp=100,
        registered_timestamp=0,
        tokens=(1,),
        version=1,
        ttl=None,
        item_bytes=1,
    )
    view = MemberView(member, heartbeat_age=-3.0, stale=False, ownership=1.0, cas_last_change=103.0)
    ring = RingView(hostile, (view,), {"ACTIVE": 1}, 0, 100, 1)
    table = TableView(
        table="t",
        ok=False,
        result="error",
        error=hostile,
        attempted_at=103.0,
        scan_duration=0.1,
        scanned_at=103.0,
        rings=(ring,),
    )
    page = render_page(Snapshot(103.0, (table,), 60.0), frozenset({"t"}), 110.0)
    assert "<img" not in page
    # ring (heading, data-ring), member (text, data-member), addr, zone, error (banner, overview)
    assert page.count("&lt;img src=x onerror=alert(1)&gt;") == 8
    assert "(clock skew)" in page


def test_a_floor_equal_to_the_cap_is_said_once() -> None:
    page = render_page(
        Snapshot(created_at=1_700_000_000.0, stale_after=20.0, stale_floor=20.0),
        frozenset(),
        1_700_000_000.0,
    )
    assert "at least 20s and at most 20s" not in page
    assert (
        "stale when its heartbeat is older than 20s (or 2 of its own heartbeat periods, "
        "once known, if longer)"
    ) in page
