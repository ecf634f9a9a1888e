"""The console at /console in a real browser: Debian's chromium, headless, driven by
Playwright, talking to the real server on loopback and nowhere else. What a person does (click
cells, press buttons) and what they see (the colour of a cell, the answer's text) is what the
tests do and check; boto3 beside the browser says what the AWS wire answers to the same thing.

The screenshots go into docs/ with HYPERPOD_SCREENSHOTS=docs (the README shows one). The
10,000-node page's timings are printed, not asserted tightly (bench/ is for timings): a bound
far above them only catches a page that broke."""

from __future__ import annotations

import fnmatch
import http.client
import json
import os
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.support import ServerProcess, group

CHROMIUM = Path("/usr/bin/chromium")
# The screenshots the README shows are the tests' own, taken with HYPERPOD_SCREENSHOTS=docs
# (`HYPERPOD_SCREENSHOTS=docs make test`); any other run writes them to a scratch folder,
# so running the suite leaves the checkout as it was.
DOCS = (
    Path(__file__).resolve().parent.parent / "docs"
    if os.environ.get("HYPERPOD_SCREENSHOTS") == "docs"
    else Path(tempfile.mkdtemp(prefix="console-screenshots-"))
)
# How long the page may take to show a change the server made (a delta is sent within a
# quarter second; the margin is for a machine busy with other tests).
SEEN_WITHIN_MS = 20_000
LIFECYCLE = {"SourceS3Uri": "s3://bucket/lifecycle/", "OnCreate": "on_create.sh"}
# What the page shows is waited for this long before a check fails: a machine busy with other
# tests can be slow, and a wait that ends early costs nothing.
expect.set_options(timeout=SEEN_WITHIN_MS)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    assert CHROMIUM.exists(), "the console tests need Debian's chromium: apt-get install chromium"
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    yield browser
    browser.close()


def open_page(browser: Browser, server: ServerProcess) -> tuple[Page, list[str]]:
    """A page of its own, which may reach the server and nothing else: any other request is
    refused and remembered, as is any error of the page's scripts; the test checks that there
    was none."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    elsewhere: list[str] = []

    def only_the_server(route: Any) -> None:
        if route.request.url.startswith(server.url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_server)
    page = context.new_page()
    page.set_default_timeout(SEEN_WITHIN_MS)
    page.on("pageerror", lambda error: elsewhere.append(f"page error: {error}"))
    return page, elsewhere


def cluster_url(server: ServerProcess, name: str) -> str:
    return f"{server.url}/console#/clusters/123456789012/us-east-1/{name}"


def cell(page: Page, row: int) -> dict[str, Any]:
    """Where a node's cell is, the status its colour shows, and the instance it stands for."""
    found = page.evaluate("row => window.hpConsole.cell(row)", row)
    assert found is not None, f"no cell for node {row}"
    return found


def wait_shown(page: Page, rows: list[int], status: str) -> None:
    page.wait_for_function(
        "([rows, status]) => rows.every(row => {"
        "  const cell = window.hpConsole.cell(row); return cell && cell.shown === status; })",
        arg=[rows, status],
        timeout=SEEN_WITHIN_MS,
    )


def click_cell(page: Page, row: int, *modifiers: str) -> None:
    where = cell(page, row)
    for key in modifiers:
        page.keyboard.down(key)
    page.mouse.click(where["x"], where["y"])
    for key in modifiers:
        page.keyboard.up(key)


def advance(page: Page, seconds: int) -> None:
    """With the console's own clock control."""
    page.fill("#advance-seconds", str(seconds))
    page.click("#advance-button")
    expect(page.locator("#advance-button")).to_be_enabled()


def create(client: Any, name: str, workers: int, **extra: Any) -> None:
    client.create_cluster(
        ClusterName=name,
        InstanceGroups=[
            group("controller", 1, "ml.m5.xlarge", LifeCycleConfig=LIFECYCLE),
            group("workers", workers, "ml.g5.8xlarge", LifeCycleConfig=LIFECYCLE),
        ],
        Orchestrator={"Slurm": {"SlurmConfigStrategy": "Managed"}},
        NodeRecovery="Automatic",
        **extra,
    )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("console") / "data", "--clock", "manual")
    server.start()
    create(server.client(), "fleet", 30)
    server.settle()
    yield server
    server.stop()


def test_the_clusters_page_lists_each_cluster_with_its_nodes_by_status(
    browser: Browser, fleet: ServerProcess
) -> None:
    page, elsewhere = open_page(browser, fleet)
    page.goto(f"{fleet.url}/console")
    expect(page.locator("#clock-text")).to_contain_text("(manual)")
    expect(page.locator("#advance")).to_be_visible()
    row = page.locator("#clusters tr[data-cluster=fleet]")
    expect(row).to_contain_text("InService")
    expect(row).to_contain_text("Slurm")
    expect(row).to_contain_text("Classic")
    expect(row).to_contain_text("Running 31")
    page.screenshot(path=str(DOCS / "console-clusters.png"))
    page.click("text=fleet")
    expect(page.locator("#cluster-name")).to_have_text("fleet")
    expect(page.locator("section.group[data-group=workers] [data-role=counts]")).to_have_text(
        "Current 30 / Target 30 / Min none"
    )
    page.context.close()
    assert elsewhere == []


def test_replacing_two_workers_shows_them_shut_down_and_new_instances_come_up(
    browser: Browser, fleet: ServerProcess
) -> None:
    sm = fleet.client()
    page, elsewhere = open_page(browser, fleet)
    page.goto(cluster_url(fleet, "fleet"))
    page.wait_for_function("window.hpConsole.metrics.firstPaintMs !== null")
    rows = page.evaluate("window.hpConsole.rows('workers')")
    first, second = rows[0], rows[1]
    old = {cell(page, first)["instanceId"], cell(page, second)["instanceId"]}
    assert [cell(page, row)["shown"] for row in (first, second)] == ["Running", "Running"]

    click_cell(page, first)
    click_cell(page, second, "Control")
    expect(page.locator("#selected-count")).to_have_text("2 nodes selected")
    expect(page.locator("#details-body")).to_contain_text(cell(page, second)["instanceId"])
    page.click("#act-replace")
    expect(page.locator("#result")).to_contain_text("Successful (2)")
    wait_shown(page, [first, second], "ShuttingDown")
    # The details of the node last clicked follow it live.
    expect(page.locator("#details-body")).to_contain_text("ShuttingDown")
    page.screenshot(path=str(DOCS / "console-replace.png"))

    # Asked again while they shut down: each node's refusal, as boto3 gets it.
    page.click("#act-replace")
    busy = cell(page, first)["instanceId"]
    answer = sm.batch_replace_cluster_nodes(ClusterName="fleet", NodeIds=[busy])
    refusal = answer["Failed"][0]
    expect(page.locator("#result")).to_contain_text(
        f"Failed {busy}: {refusal['ErrorCode']}: {refusal['Message']}"
    )

    advance(page, 120)  # the old instances are terminated, new ones launch
    wait_shown(page, [first, second], "Pending")
    advance(page, 600)  # their lifecycle scripts have run
    wait_shown(page, [first, second], "Running")
    new = {cell(page, first)["instanceId"], cell(page, second)["instanceId"]}
    assert new.isdisjoint(old) and None not in new
    listed = {
        node["InstanceId"]: node["InstanceStatus"]["Status"]
        for page_ in sm.get_paginator("list_cluster_nodes").paginate(ClusterName="fleet")
        for node in page_["ClusterNodeSummaries"]
    }
    assert {listed.get(instance) for instance in new} == {"Running"}
    assert old.isdisjoint(listed)
    # The cell's details say so too, with the new instance's volumes and events.
    click_cell(page, first)
    details = page.locator("#details-body")
    expect(details).to_contain_text(cell(page, first)["instanceId"])
    expect(details).to_contain_text("Boot count")
    expect(details).to_contain_text("completed successfully")
    page.context.close()
    assert elsewhere == []


def test_replacing_26_nodes_shows_the_validation_error_boto3_gets(
    browser: Browser, fleet: ServerProcess
) -> None:
    page, elsewhere = open_page(browser, fleet)
    page.goto(cluster_url(fleet, "fleet"))
    page.wait_for_function("window.hpConsole.metrics.firstPaintMs !== null")
    rows = page.evaluate("window.hpConsole.rows('workers')")[2:28]
    click_cell(page, rows[0])
    click_cell(page, rows[-1], "Shift")
    expect(page.locator("#selected-count")).to_have_text("26 nodes selected")
    ids = [cell(page, row)["instanceId"] for row in rows]
    page.click("#act-replace")
    with pytest.raises(ClientError) as refused:
        fleet.client().batch_replace_cluster_nodes(ClusterName="fleet", NodeIds=ids)
    assert "Member must have length less than or equal to 25" in str(refused.value)
    expect(page.locator("#result")).to_have_text(str(refused.value))
    page.screenshot(path=str(DOCS / "console-validation.png"))
    # Nothing was started.
    assert {cell(page, row)["shown"] for row in rows} == {"Running"}
    page.context.close()
    assert elsewhere == []


def test_a_gpu_fault_is_found_and_the_node_recovered_automatically(
    browser: Browser, fleet: ServerProcess
) -> None:
    page, elsewhere = open_page(browser, fleet)
    page.goto(cluster_url(fleet, "fleet"))
    page.wait_for_function("window.hpConsole.metrics.firstPaintMs !== null")
    rows = page.evaluate("window.hpConsole.rows('workers')")
    # A fault put on and taken off again before the health agent would notice it.
    click_cell(page, rows[28])
    page.fill("#fault-delay", "3600")
    page.click("#fault-inject")
    spared = cell(page, rows[28])["instanceId"]
    expect(page.locator("#faults")).to_contain_text(f"GpuXid79 on {spared}, noticed after 3600")
    page.locator("#faults li", has_text=spared).get_by_role("button", name="Remove").click()
    expect(page.locator("#faults")).to_have_text("No hardware faults.")
    status, listed = fleet.admin("GET", "/_hyperpod/faults")
    assert status == 200 and listed["Faults"] == []
    page.fill("#fault-delay", "")

    row = rows[29]
    faulty = cell(page, row)["instanceId"]
    click_cell(page, row)
    page.select_option("#fault-type", "GpuXid79")
    page.click("#fault-inject")
    expect(page.locator("#result")).to_contain_text(f"GpuXid79 on {faulty}")
    expect(page.locator("#faults")).to_contain_text(f"GpuXid79 on {faulty}")
    expect(page.locator("#details-body")).to_contain_text("GpuXid79")

    advance(page, 15)  # the health agent notices it, and NodeRecovery Automatic replaces it
    wait_shown(page, [row], "ShuttingDown")
    expect(page.locator("#events")).to_contain_text("GPU has fallen off the bus")
    expect(page.locator("#details-body")).to_contain_text("ShuttingDown")
    page.screenshot(path=str(DOCS / "console-fault.png"))
    advance(page, 900)
    wait_shown(page, [row], "Running")
    recovered = cell(page, row)["instanceId"]
    assert recovered not in (None, faulty)
    # The fault went with its instance.
    expect(page.locator("#faults")).to_have_text("No hardware faults.")
    node = fleet.client().describe_cluster_node(ClusterName="fleet", NodeId=recovered)
    assert node["NodeDetails"]["InstanceStatus"]["Status"] == "Running"
    page.context.close()
    assert elsewhere == []


def test_the_console_answers_loopback_clients_only_in_open_mode(fleet: ServerProcess) -> None:
    url = urlsplit(fleet.url)
    for path in ("/console", "/console/api/clusters"):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        try:
            conn.request("GET", path, headers={"X-Forwarded-For": "203.0.113.9"})
            answer = conn.getresponse()
            body = json.loads(answer.read())
        finally:
            conn.close()
        assert answer.status == 403
        assert body["error"] == "Forbidden" and "loopback clients only" in body["message"]


def test_under_a_real_clock_the_page_offers_no_advance(browser: Browser, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--demo").start()
    try:
        page, elsewhere = open_page(browser, server)
        page.goto(cluster_url(server, "demo"))
        expect(page.locator("#clock-text")).to_contain_text("(real, 60x)")
        expect(page.locator("#advance")).to_be_hidden()
        # The demo cluster, coming up by itself: its nodes are there, whatever their state.
        page.wait_for_function("window.hpConsole.rows('workers').length === 4")
        expect(page.locator("#cluster-name")).to_have_text("demo")
        page.context.close()
    finally:
        server.stop()
    assert elsewhere == []


def test_console_requests_it_has_no_answer_for_are_json_errors(fleet: ServerProcess) -> None:
    for method, path, status, code in (
        ("GET", "/console/nowhere", 404, "NotFound"),
        ("DELETE", "/console/api/clusters", 405, "MethodNotAllowed"),
        ("GET", "/console/api/clusters/no-such-cluster/stream", 404, "ClusterNotFound"),
        ("GET", "/console/api/clusters?account=12", 400, "InvalidRequest"),
    ):
        answer = fleet.admin(method, path)
        assert answer[0] == status and answer[1]["error"] == code, (path, answer)
    status, refused = fleet.admin("POST", "/console/api/call", {"Operation": "DeleteCluster"})
    assert status == 400 and "Operation must be one of" in refused["message"]


class Stream:
    """A cluster's console stream read as a client does, frame by frame."""

    def __init__(self, server: ServerProcess, cluster: str) -> None:
        url = urlsplit(server.url)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        self.conn.request("GET", f"/console/api/clusters/{cluster}/stream")
        self.answer = self.conn.getresponse()

    def next(self) -> tuple[str, Any]:
        """The next event and its data; ("end", None) once the server ended the stream."""
        event, data = "", ""
        while True:
            line = self.answer.readline().decode()
            if not line:
                return "end", None
            if line == "\n" and event:
                return event, json.loads(data)
            if line.startswith("event: "):
                event = line[7:].strip()
            elif line.startswith("data: "):
                data += line[6:]

    def close(self) -> None:
        self.conn.close()


def test_the_stream_sends_the_picture_then_what_changed_then_that_the_cluster_went(
    fleet: ServerProcess,
) -> None:
    sm = fleet.client()
    sm.create_cluster(
        ClusterName="passing", InstanceGroups=[group("workers", 2, LifeCycleConfig=LIFECYCLE)]
    )
    fleet.settle()
    stream = Stream(fleet, "passing")
    try:
        assert stream.answer.status == 200
        assert stream.answer.getheader("content-type").startswith("text/event-stream")
        event, snapshot = stream.next()
        assert event == "snapshot"
        fields = snapshot["NodeFields"]
        nodes = [dict(zip(fields, row, strict=True)) for row in snapshot["Nodes"]]
        assert [node["Status"] for node in nodes] == ["Running", "Running"]
        assert snapshot["Cluster"]["ClusterStatus"] == "InService"
        assert [g["CurrentCount"] for g in snapshot["Cluster"]["InstanceGroups"]] == [2]

        rebooted = nodes[0]["InstanceId"]
        sm.batch_reboot_cluster_nodes(ClusterName="passing", NodeIds=[rebooted])
        event, delta = stream.next()
        assert event == "delta"
        changed = [dict(zip(fields, row, strict=True)) for row in delta["Nodes"]]
        # Only the node that changed, and what else changed with it.
        assert [(node["InstanceId"], node["Status"]) for node in changed] == [(rebooted, "Pending")]
        assert "started" in delta["Events"][0]["Description"]

        sm.delete_cluster(ClusterName="passing")
        fleet.settle()
        while event != "gone":
            event, data = stream.next()
            assert event != "end"
        assert data == {"ClusterName": "passing"}
        assert stream.next() == ("end", None)
    finally:
        stream.close()


def test_a_stream_ends_when_the_server_stops(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--clock", "manual").start()
    try:
        server.client().create_cluster(
            ClusterName="short", InstanceGroups=[group("workers", 1, LifeCycleConfig=LIFECYCLE)]
        )
        stream = Stream(server, "short")
        assert stream.next()[0] == "snapshot"
    finally:
        # uvicorn waits for open responses before it stops; the console's stream is ended.
        assert server.stop() == 0
    assert stream.next() == ("end", None)
    stream.close()


def test_the_consoles_assets_are_package_data() -> None:
    root = Path(__file__).resolve().parent.parent
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["hyperpod_local"]
    package = root / "src" / "hyperpod_local"
    assets = sorted(package.glob("console/assets/*"))
    assert {path.name for path in assets} >= {"index.html", "console.js", "grid.js"}
    for path in assets:
        relative = path.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative
    page = (package / "console" / "assets" / "index.html").read_text()
    # Everything the page loads is the server's own.
    assert "http://" not in page and "https://" not in page and "//cdn" not in page


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("console-strict")
    credentials = root / "credentials"
    credentials.write_text("AKIDCONSOLE0000000001 testing 123456789012\n")
    server = ServerProcess(
        root / "data", "--auth", "strict", "--credentials", str(credentials), "--clock", "manual"
    ).start()
    server.client(access_key="AKIDCONSOLE0000000001").create_cluster(
        ClusterName="guarded", InstanceGroups=[group("workers", 3, LifeCycleConfig=LIFECYCLE)]
    )
    server.settle()
    yield server
    server.stop()


def test_in_strict_mode_the_page_shows_and_does_nothing_without_the_token(
    browser: Browser, strict: ServerProcess
) -> None:
    page, elsewhere = open_page(browser, strict)
    page.goto(f"{strict.url}/console")
    expect(page.locator("#auth")).to_be_visible()
    expect(page.locator("#auth")).to_contain_text("admin token")
    expect(page.locator("#clusters-page")).to_be_hidden()
    # The page holds no data; what it would read or do is refused without the token.
    for method, path in (
        ("GET", "/console/api/clusters"),
        ("GET", "/console/api/clusters/any/stream"),
        ("POST", "/console/api/call"),
        ("POST", "/_hyperpod/clock/advance"),
    ):
        status = page.evaluate(
            "([method, path]) => fetch(path, {method}).then(answer => answer.status)",
            [method, path],
        )
        assert status == 401, path
    page.fill("#token", "not-the-token")
    page.click("text=Open the console")
    expect(page.locator("#auth-error")).to_contain_text("refused that token")
    page.screenshot(path=str(DOCS / "console-token.png"))
    assert strict.admin_token
    page.fill("#token", strict.admin_token)
    page.click("text=Open the console")
    row = page.locator("#clusters tr[data-cluster=guarded]")
    expect(row).to_contain_text("Running 3")
    # With the token the whole console works: the live grid, a node's details, an action.
    page.click("text=guarded")
    page.wait_for_function("window.hpConsole.metrics.firstPaintMs !== null")
    rows = page.evaluate("window.hpConsole.rows('workers')")
    click_cell(page, rows[0])
    expect(page.locator("#details-body")).to_contain_text("Boot count")
    page.click("#act-reboot")
    expect(page.locator("#result")).to_contain_text("Successful (1)")
    wait_shown(page, [rows[0]], "Pending")
    # A node deleted goes ShuttingDown, then from the grid, and its group's count with it.
    click_cell(page, rows[2])
    page.click("#act-delete")
    expect(page.locator("#result")).to_contain_text("Successful (1)")
    wait_shown(page, [rows[2]], "ShuttingDown")
    page.click("#settle-button")
    page.wait_for_function("window.hpConsole.rows('workers').length === 2", timeout=SEEN_WITHIN_MS)
    expect(page.locator("section.group[data-group=workers] [data-role=counts]")).to_have_text(
        "Current 2 / Target 2 / Min none"
    )
    page.context.close()
    assert elsewhere == []


# ---- a 10,000-node cluster --------------------------------------------------------------------

BIG_GROUPS = ("workers-a", "workers-b")


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("console-big") / "data", "--clock", "manual")
    server.start()
    server.client().create_cluster(
        ClusterName="big",
        InstanceGroups=[group(name, 5000, LifeCycleConfig=LIFECYCLE) for name in BIG_GROUPS],
    )
    server.settle()
    yield server
    server.stop()


def _roll(server: ServerProcess, seconds: float, done: dict[str, float]) -> None:
    """A rolling software update of all 10,000 nodes, 250 per group at a time, the clock moved
    a batch's time again and again: 500 nodes go SystemUpdating and the 500 before them come
    back Running each time, thousands of node changes a second while the page watches. It
    stops before the update is over (15 of its 20 rounds at most), so some nodes are still
    updating when the page is compared with the store."""
    sm = server.client()
    status, _ = server.admin(
        "POST", "/_hyperpod/platform/releases", {"ImageReleaseVersion": "2026.1.15"}
    )
    assert status == 201
    began = time.monotonic()
    sm.update_cluster_software(
        ClusterName="big",
        DeploymentConfig={
            "RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 250}},
            "WaitIntervalInSeconds": 0,
        },
    )
    while time.monotonic() - began < seconds and done["rounds"] < 15:
        server.advance(600)
        done["rounds"] += 1
    done["seconds"] = time.monotonic() - began


def test_a_10000_node_cluster_paints_fast_and_keeps_up_with_a_rolling_update_of_every_node(
    browser: Browser, big: ServerProcess
) -> None:
    page, elsewhere = open_page(browser, big)
    page.goto(cluster_url(big, "big"))
    page.wait_for_function("window.hpConsole.metrics.firstPaintMs !== null", timeout=60_000)
    first = page.evaluate("window.hpConsole.metrics")
    assert first["nodes"] == 10_000
    rows = page.evaluate("window.hpConsole.rows('workers-b')")
    assert len(rows) == 5000

    # Frame gaps and hover answers while the fleet changes.
    page.evaluate(
        """() => {
        const watch = window.hpWatch = {gaps: [], last: performance.now(), on: true};
        const tick = now => { watch.gaps.push(now - watch.last); watch.last = now;
                              if (watch.on) requestAnimationFrame(tick); };
        requestAnimationFrame(tick);
    }"""
    )
    rolled = {"rounds": 0, "seconds": 0.0}
    roll = threading.Thread(target=_roll, args=(big, 4.0, rolled))
    began = time.monotonic()
    roll.start()
    hovers: list[float] = []
    try:
        while roll.is_alive() and time.monotonic() - began < 60:
            for row in (rows[100], rows[2500], rows[4900]):
                where = cell(page, row)
                started = time.perf_counter()
                page.mouse.move(where["x"], where["y"])
                expect(page.locator("#tip")).to_contain_text("workers-b")
                hovers.append((time.perf_counter() - started) * 1000)
                page.mouse.move(5, 5)
                time.sleep(0.05)
    finally:
        roll.join(60)
    # The clock stands still now: the page comes to show what the store holds.
    status, overview = big.admin("GET", "/console/api/clusters")
    assert status == 200
    counts = overview["Clusters"][0]["NodeCounts"]
    assert counts.get("SystemUpdating") and sum(counts.values()) == 10_000
    expect(page.locator("#legend")).to_have_text(
        "".join(f"{status} {count}" for status, count in sorted(counts.items())),
        timeout=SEEN_WITHIN_MS,
    )
    for info in big.client().describe_cluster(ClusterName="big")["InstanceGroups"]:
        expect(
            page.locator(f"section.group[data-group={info['InstanceGroupName']}]")
        ).to_contain_text(
            f"Software update InProgress: {info['TargetStateCount']} / 5000 on 2026.1.15"
        )
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(DOCS / "console-10000-nodes.png"), full_page=True)
    watched = page.evaluate(
        "() => { window.hpWatch.on = false;"
        " const g = window.hpWatch.gaps.slice(1).sort((a, b) => a - b);"
        " return {frames: g.length, max: g[g.length - 1], p95: g[Math.floor(g.length * 0.95)]}; }"
    )
    metrics = page.evaluate("window.hpConsole.metrics")
    # Each round, 500 nodes start their update and the 500 before them end it.
    changes, seconds = 1000 * rolled["rounds"], rolled["seconds"]
    print(
        f"\n10,000-node cluster page: first paint {first['firstPaintMs']:.0f} ms after navigation "
        f"(snapshot {first['snapshotBytes'] / 1e6:.1f} MB, received at "
        f"{first['snapshotReceivedMs']:.0f} ms); "
        f"a rolling update: {changes:.0f} node changes in {seconds:.1f} s "
        f"({changes / seconds:.0f} a second): "
        f"{metrics['deltas']} deltas, {metrics['nodesChanged']} cell updates, slowest delta "
        f"{metrics['maxDeltaApplyMs']:.1f} ms to apply, slowest paint {metrics['maxPaintMs']:.1f} "
        f"ms; frames {watched['frames']}, p95 gap {watched['p95']:.0f} ms, worst "
        f"{watched['max']:.0f} ms; hover to tooltip median "
        f"{sorted(hovers)[len(hovers) // 2]:.0f} ms over {len(hovers)} hovers"
    )
    # Very generous bounds: they catch a broken page, not a slow machine.
    assert first["firstPaintMs"] < 15_000
    # Each node that went SystemUpdating was one cell update at least.
    assert metrics["nodesChanged"] >= counts["SystemUpdating"]
    page.context.close()
    assert elsewhere == []
