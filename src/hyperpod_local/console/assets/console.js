// The hyperpod-local console: the clusters of an account and region, and one cluster's fleet
// live from its server-sent event stream. Every request carries the admin token when the
// server wants one; node actions go through /console/api/call, which runs the SageMaker
// operation with the API's own rules, and the answer is shown as boto3 would see it.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "hyperpod-local-admin-token";
  const CLUSTERS_REFRESH_MS = 5000;
  const CLOCK_REFRESH_MS = 5000;

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    account: "123456789012",
    region: "us-east-1",
    page: null,
    cluster: null,
    clock: null,
    timers: [],
  };

  // What the browser test reads: how long the first paint took, how the deltas went.
  const metrics = {
    firstPaintMs: null,
    streamRequestedMs: null,
    streamOpenedMs: null,
    snapshotReceivedMs: null,
    snapshotAppliedMs: null,
    snapshotBytes: 0,
    nodes: 0,
    deltas: 0,
    nodesChanged: 0,
    maxDeltaApplyMs: 0,
    maxPaintMs: 0,
  };

  class Refused extends Error {
    constructor(status, data) {
      super((data && data.message) || String(status));
      this.status = status;
      this.data = data;
    }
  }

  function headers(extra) {
    const given = Object.assign({}, extra || {});
    if (state.token) given.Authorization = "Bearer " + state.token;
    return given;
  }

  async function api(method, path, body) {
    const init = { method, headers: headers(), cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (error) {
      data = { message: text };
    }
    refuseOn(response.status, data);
    return { status: response.status, data };
  }

  function refuseOn(status, data) {
    if (status === 401) {
      showAuth(state.token ? "The server refused that token (401 Unauthorized)." : "");
      throw new Refused(401, data);
    }
    if (status === 403) {
      showRefused((data && data.message) || "403 Forbidden");
      throw new Refused(403, data);
    }
  }

  // ---- pages -------------------------------------------------------------------------------

  const PAGES = ["auth", "refused", "clusters-page", "cluster-page"];

  function show(page) {
    for (const id of PAGES) $(id).hidden = id !== page;
  }

  function leavePage() {
    for (const timer of state.timers) clearTimeout(timer);
    state.timers = [];
    if (state.cluster) {
      state.cluster.closed = true;
      if (state.cluster.abort) state.cluster.abort.abort();
      state.cluster = null;
    }
    hideTip();
    setLive(false);
  }

  function showAuth(message) {
    leavePage();
    state.page = "auth";
    show("auth");
    $("auth-error").textContent = message || "";
    $("token").focus();
  }

  function showRefused(message) {
    leavePage();
    state.page = "refused";
    show("refused");
    $("refused-text").textContent = message;
  }

  // No round trip first: the page's own requests say if the token is wanted (401) or the
  // client not allowed (403).
  function start() {
    route();
  }

  function route() {
    leavePage();
    const match = (location.hash || "").match(/^#\/clusters\/([0-9]{12})\/([^/]+)\/(.+)$/);
    if (match) {
      state.account = match[1];
      state.region = decodeURIComponent(match[2]);
      syncScopeForm();
      openCluster(decodeURIComponent(match[3]));
    } else {
      const scope = (location.hash || "").match(/^#\/([0-9]{12})\/([^/]+)$/);
      if (scope) {
        state.account = scope[1];
        state.region = decodeURIComponent(scope[2]);
      }
      syncScopeForm();
      openClusters();
    }
    refreshClock();
  }

  function syncScopeForm() {
    $("account").value = state.account;
    $("region").value = state.region;
  }

  function scopeQuery() {
    return `account=${encodeURIComponent(state.account)}&region=${encodeURIComponent(state.region)}`;
  }

  function clusterHash(name) {
    return `#/clusters/${state.account}/${encodeURIComponent(state.region)}/${encodeURIComponent(name)}`;
  }

  // ---- the clock ---------------------------------------------------------------------------

  function formatTime(seconds) {
    if (seconds === null || seconds === undefined) return "";
    return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19);
  }

  async function refreshClock() {
    try {
      const { status, data } = await api("GET", "/_hyperpod/clock");
      if (status === 200) showClock(data);
    } catch (error) {
      if (error instanceof Refused) return;
    }
    const timer = setTimeout(refreshClock, CLOCK_REFRESH_MS);
    state.timers.push(timer);
  }

  function showClock(clock) {
    state.clock = clock;
    const speed = clock.Speed ? `, ${clock.Speed}x` : "";
    $("clock-text").textContent = `HyperPod time ${formatTime(clock.Now)} UTC (${clock.Mode}${speed})`;
    $("advance").hidden = clock.Mode !== "manual";
  }

  async function advanceClock(path, body) {
    $("advance-button").disabled = true;
    $("settle-button").disabled = true;
    try {
      const { status, data } = await api("POST", path, body);
      if (status === 200) showClock(data);
      else showResult([line("failed", `${status} ${data.error}: ${data.message}`)]);
    } catch (error) {
      if (!(error instanceof Refused)) showResult([line("failed", String(error))]);
    } finally {
      $("advance-button").disabled = false;
      $("settle-button").disabled = false;
    }
  }

  // ---- the clusters page -------------------------------------------------------------------

  function statusChips(counts) {
    const box = document.createElement("span");
    for (const [status, count] of Object.entries(counts).sort()) {
      const chip = document.createElement("span");
      chip.className = "chip";
      chip.dataset.status = status;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = window.HpGrid.statusColor(status);
      chip.append(swatch, `${status} ${count}`);
      box.append(chip);
    }
    return box;
  }

  async function openClusters() {
    state.page = "clusters";
    show("clusters-page");
    $("clusters-scope").textContent = `${state.account} · ${state.region}`;
    await loadClusters();
  }

  async function loadClusters() {
    if (state.page !== "clusters") return;
    let data;
    try {
      const answer = await api("GET", `/console/api/clusters?${scopeQuery()}`);
      data = answer.data;
      if (answer.status !== 200) {
        $("clusters-empty").hidden = false;
        $("clusters-empty").textContent = `${answer.status} ${data.error}: ${data.message}`;
        return;
      }
    } catch (error) {
      return;
    }
    if (state.page !== "clusters") return;
    const regions = $("regions");
    regions.replaceChildren();
    for (const scope of data.Scopes) {
      const option = document.createElement("option");
      option.value = scope.Region;
      option.label = scope.Account;
      regions.append(option);
    }
    const body = $("clusters").tBodies[0];
    body.replaceChildren();
    for (const cluster of data.Clusters) {
      const row = body.insertRow();
      row.dataset.cluster = cluster.ClusterName;
      const link = document.createElement("a");
      link.href = clusterHash(cluster.ClusterName);
      link.textContent = cluster.ClusterName;
      row.insertCell().append(link);
      row.insertCell().append(badge(cluster.ClusterStatus));
      row.insertCell().textContent = cluster.Orchestrator;
      row.insertCell().textContent = cluster.NodeProvisioningMode;
      row.insertCell().textContent = cluster.NodeRecovery;
      const total = Object.values(cluster.NodeCounts).reduce((a, b) => a + b, 0);
      row.insertCell().textContent = String(total);
      row.insertCell().append(statusChips(cluster.NodeCounts));
      row.insertCell().textContent = formatTime(cluster.CreationTime);
    }
    $("clusters-empty").textContent = "No clusters in this account and region.";
    $("clusters-empty").hidden = data.Clusters.length > 0;
    const timer = setTimeout(loadClusters, CLUSTERS_REFRESH_MS);
    state.timers.push(timer);
  }

  function badge(status) {
    const span = document.createElement("span");
    span.className = `badge ${status}`;
    span.textContent = status;
    return span;
  }

  // ---- the cluster page --------------------------------------------------------------------

  function openCluster(name) {
    state.page = "cluster";
    show("cluster-page");
    const cluster = {
      name,
      account: state.account,
      region: state.region,
      fields: null,
      byRow: new Map(),
      groups: new Map(),
      selected: new Set(),
      anchor: null,
      faults: [],
      view: null,
      detailsRow: null,
      closed: false,
      abort: null,
      painted: false,
      frame: 0,
    };
    state.cluster = cluster;
    $("cluster-name").textContent = name;
    $("cluster-status").textContent = "";
    $("cluster-status").className = "badge";
    $("cluster-facts").textContent = "";
    $("cluster-gone").hidden = true;
    $("groups").replaceChildren();
    $("legend").replaceChildren();
    $("events").replaceChildren();
    $("operations").replaceChildren();
    $("faults").replaceChildren();
    $("result").replaceChildren();
    $("details-body").textContent = "Click a cell.";
    $("details-body").className = "muted";
    updateSelection(cluster);
    stream(cluster);
  }

  function setLive(on) {
    $("live").classList.toggle("on", on);
    $("live").textContent = on ? "● live" : "○";
  }

  async function stream(cluster) {
    const controller = new AbortController();
    cluster.abort = controller;
    const url = `/console/api/clusters/${encodeURIComponent(cluster.name)}/stream?${scopeQuery()}`;
    let retry = true;
    if (metrics.streamRequestedMs === null) metrics.streamRequestedMs = performance.now();
    try {
      const response = await fetch(url, {
        headers: headers(),
        signal: controller.signal,
        cache: "no-store",
      });
      if (response.status !== 200) {
        const data = await response.json().catch(() => ({}));
        refuseOn(response.status, data);
        showGone(cluster, `${response.status} ${data.error}: ${data.message}`);
        return;
      }
      setLive(true);
      if (metrics.streamOpenedMs === null) metrics.streamOpenedMs = performance.now();
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      let searched = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut = buffer.indexOf("\n\n", searched);
        while (cut >= 0) {
          const frame = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          if (!onFrame(cluster, frame)) retry = false;
          cut = buffer.indexOf("\n\n");
        }
        searched = Math.max(0, buffer.length - 1);
      }
    } catch (error) {
      if (error instanceof Refused || cluster.closed) return;
    }
    if (cluster.closed || !retry) return;
    setLive(false);
    // The stream ended (the server restarted, or this page fell behind): start again.
    const timer = setTimeout(() => {
      if (!cluster.closed) stream(cluster);
    }, 1000);
    state.timers.push(timer);
  }

  // Returns false when the stream is over for good.
  function onFrame(cluster, frame) {
    let event = "message";
    let data = "";
    for (const raw of frame.split("\n")) {
      if (raw.startsWith(":")) continue;
      if (raw.startsWith("event: ")) event = raw.slice(7);
      else if (raw.startsWith("data: ")) data += raw.slice(6);
    }
    if (!data) return true;
    if (event === "snapshot") {
      const received = performance.now();
      const snapshot = JSON.parse(data);
      metrics.snapshotBytes = data.length;
      metrics.snapshotReceivedMs = received;
      applySnapshot(cluster, snapshot);
      if (metrics.snapshotAppliedMs === null) metrics.snapshotAppliedMs = performance.now();
    } else if (event === "delta") {
      applyDelta(cluster, JSON.parse(data));
    } else if (event === "gone") {
      showGone(cluster, `Cluster ${cluster.name} is gone (deleted).`);
      return false;
    }
    return true;
  }

  function showGone(cluster, message) {
    cluster.closed = true;
    setLive(false);
    $("cluster-gone").hidden = false;
    $("cluster-gone").textContent = message;
  }

  function nodeOf(cluster, row) {
    const f = cluster.fields;
    return {
      row: row[f.Row],
      group: row[f.InstanceGroupName],
      id: row[f.InstanceId],
      lid: row[f.NodeLogicalId],
      status: row[f.Status],
      host: row[f.PrivateDnsHostname],
      type: row[f.InstanceType],
      image: row[f.ImageReleaseVersion],
      message: row[f.Message],
      busy: row[f.Busy],
      launched: row[f.LaunchTime],
      fault: false,
      selected: false,
      index: 0,
    };
  }

  function applySnapshot(cluster, snapshot) {
    if (cluster.closed) return;
    cluster.fields = {};
    snapshot.NodeFields.forEach((name, i) => (cluster.fields[name] = i));
    cluster.byRow = new Map();
    cluster.groups = new Map();
    $("groups").replaceChildren();
    const kept = cluster.selected;
    cluster.selected = new Set();
    cluster.view = snapshot.Cluster;
    for (const group of snapshot.Cluster.InstanceGroups) groupOf(cluster, group.InstanceGroupName);
    for (const row of snapshot.Nodes) {
      const node = nodeOf(cluster, row);
      cluster.byRow.set(node.row, node);
      groupOf(cluster, node.group).nodes.push(node);
      if (kept.has(node.row)) {
        node.selected = true;
        cluster.selected.add(node.row);
      }
    }
    for (const group of cluster.groups.values()) group.grid.setNodes(group.nodes);
    metrics.nodes = snapshot.Nodes.length;
    applyFaults(cluster, snapshot.Faults);
    renderCluster(cluster);
    renderEvents(snapshot.Events);
    renderOperations(cluster, snapshot.Operations);
    updateSelection(cluster);
    schedulePaint(cluster, () => {
      if (metrics.firstPaintMs === null) metrics.firstPaintMs = performance.now();
      cluster.painted = true;
    });
  }

  function applyDelta(cluster, delta) {
    if (cluster.closed || !cluster.fields) return;
    const began = performance.now();
    metrics.deltas += 1;
    for (const row of delta.Nodes || []) {
      const fresh = nodeOf(cluster, row);
      const node = cluster.byRow.get(fresh.row);
      if (node === undefined) {
        cluster.byRow.set(fresh.row, fresh);
        const group = groupOf(cluster, fresh.group);
        group.nodes.push(fresh);
        group.grid.relayout();
      } else {
        const instanceChanged = node.id !== fresh.id;
        fresh.fault = node.fault;
        fresh.selected = node.selected;
        fresh.index = node.index;
        Object.assign(node, fresh);
        if (instanceChanged) node.fault = false;
        cluster.groups.get(node.group).grid.changed(node);
        if (cluster.detailsRow === node.row) refreshDetails(cluster);
      }
      metrics.nodesChanged += 1;
    }
    for (const rowId of delta.Removed || []) {
      const node = cluster.byRow.get(rowId);
      if (node === undefined) continue;
      cluster.byRow.delete(rowId);
      cluster.selected.delete(rowId);
      const group = cluster.groups.get(node.group);
      group.nodes.splice(group.nodes.indexOf(node), 1);
      group.grid.relayout();
    }
    if (delta.Cluster) {
      cluster.view = delta.Cluster;
      for (const group of delta.Cluster.InstanceGroups) groupOf(cluster, group.InstanceGroupName);
    }
    if (delta.Faults) applyFaults(cluster, delta.Faults);
    // Groups deleted with their last node go from the page.
    for (const [name, group] of cluster.groups) {
      const listed = cluster.view.InstanceGroups.some((g) => g.InstanceGroupName === name);
      if (!listed && group.nodes.length === 0) {
        group.section.remove();
        cluster.groups.delete(name);
      }
    }
    renderCluster(cluster);
    if (delta.Events) renderEvents(delta.Events);
    if (delta.Operations || delta.Cluster) renderOperations(cluster, delta.Operations);
    if (delta.Removed) updateSelection(cluster);
    metrics.maxDeltaApplyMs = Math.max(metrics.maxDeltaApplyMs, performance.now() - began);
    schedulePaint(cluster);
  }

  function applyFaults(cluster, faults) {
    cluster.faults = faults;
    const faulty = new Set(faults.map((fault) => fault.InstanceId));
    for (const node of cluster.byRow.values()) {
      const fault = Boolean(node.id) && faulty.has(node.id);
      if (fault !== node.fault) {
        node.fault = fault;
        cluster.groups.get(node.group).grid.changed(node);
        if (cluster.detailsRow === node.row) refreshDetails(cluster);
      }
    }
    renderFaults(cluster);
  }

  function groupOf(cluster, name) {
    let group = cluster.groups.get(name);
    if (group) return group;
    const section = document.createElement("section");
    section.className = "group";
    section.dataset.group = name;
    const head = document.createElement("div");
    head.className = "group-head";
    const progress = document.createElement("div");
    progress.className = "progress";
    progress.hidden = true;
    const canvas = document.createElement("canvas");
    canvas.dataset.group = name;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `nodes of instance group ${name}`);
    section.append(head, progress, canvas);
    $("groups").append(section);
    group = {
      name,
      section,
      head,
      progress,
      nodes: [],
      grid: new window.HpGrid.GroupGrid(canvas, {
        hover: (node, event) => showTip(cluster, node, event),
        leave: hideTip,
        click: (node, event) => select(cluster, node, event),
      }),
    };
    cluster.groups.set(name, group);
    return group;
  }

  function schedulePaint(cluster, after) {
    if (cluster.frame) {
      if (after) cluster.afterPaint = after;
      return;
    }
    cluster.afterPaint = after || cluster.afterPaint;
    cluster.frame = requestAnimationFrame(() => {
      cluster.frame = 0;
      if (cluster.closed) return;
      const began = performance.now();
      for (const group of cluster.groups.values()) {
        group.grid.paint(Math.max(100, group.section.clientWidth - 22));
      }
      metrics.maxPaintMs = Math.max(metrics.maxPaintMs, performance.now() - began);
      const done = cluster.afterPaint;
      cluster.afterPaint = null;
      if (done) done();
    });
  }

  window.addEventListener("resize", () => {
    if (state.cluster) schedulePaint(state.cluster);
  });

  function renderCluster(cluster) {
    const view = cluster.view;
    const status = $("cluster-status");
    status.textContent = view.ClusterStatus;
    status.className = `badge ${view.ClusterStatus}`;
    const orchestrator = view.Orchestrator
      ? Object.keys(view.Orchestrator).join(", ")
      : "no orchestrator";
    $("cluster-facts").textContent = [
      orchestrator,
      `${view.NodeProvisioningMode || "Classic"} provisioning`,
      `NodeRecovery ${view.NodeRecovery || "Automatic"}`,
      view.ClusterArn,
    ].join(" · ");
    const counts = {};
    for (const node of cluster.byRow.values()) counts[node.status] = (counts[node.status] || 0) + 1;
    $("legend").replaceChildren(statusChips(counts));
    for (const info of view.InstanceGroups) {
      const group = cluster.groups.get(info.InstanceGroupName);
      if (group) renderGroupHead(group, info);
    }
  }

  function renderGroupHead(group, info) {
    const min = info.MinCount === undefined || info.MinCount === null ? "none" : info.MinCount;
    const type = info.InstanceType || (info.InstanceRequirements || {}).CurrentInstanceTypes || "";
    group.head.replaceChildren();
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = info.InstanceGroupName;
    const counts = document.createElement("span");
    counts.className = "counts";
    counts.dataset.role = "counts";
    counts.textContent = `Current ${info.CurrentCount} / Target ${info.TargetCount} / Min ${min}`;
    const image = document.createElement("span");
    image.className = "muted";
    image.textContent = `image ${info.CurrentImageReleaseVersion} (${info.ImageVersionStatus})`;
    const all = document.createElement("button");
    all.type = "button";
    all.className = "select-all";
    all.textContent = "Select all";
    all.addEventListener("click", () => selectGroup(group));
    group.head.append(name, String(type), badge(info.Status), counts, image, all);
    const update = info.SoftwareUpdateStatus;
    if (update) {
      const target = info.TargetCount || 1;
      const done = info.TargetStateCount || 0;
      group.progress.hidden = false;
      group.progress.replaceChildren(
        `Software update ${update}: ${done} / ${info.TargetCount} on ${info.DesiredImageReleaseVersion}`,
        bar(done / target),
      );
    } else {
      group.progress.hidden = true;
    }
  }

  function bar(fraction) {
    const outer = document.createElement("span");
    outer.className = "bar";
    const inner = document.createElement("span");
    inner.style.width = `${Math.round(Math.max(0, Math.min(1, fraction)) * 100)}%`;
    outer.append(inner);
    return outer;
  }

  function renderEvents(events) {
    const list = $("events");
    list.replaceChildren();
    for (const event of events) {
      const item = document.createElement("li");
      item.className = `lvl-${event.EventLevel}`;
      const time = document.createElement("time");
      time.textContent = formatTime(event.EventTime).slice(5);
      const where = event.InstanceId || event.InstanceGroupName || event.ResourceType;
      item.append(time, `${event.EventLevel} ${where}: ${event.Description}`);
      list.append(item);
    }
    if (!events.length) list.append(note("No events."));
  }

  function note(text) {
    const item = document.createElement("li");
    item.className = "muted";
    item.textContent = text;
    return item;
  }

  function renderOperations(cluster, operations) {
    if (operations) cluster.operations = operations;
    const list = $("operations");
    list.replaceChildren();
    const groups = new Map((cluster.view.InstanceGroups || []).map((g) => [g.InstanceGroupName, g]));
    for (const operation of cluster.operations || []) {
      const item = document.createElement("li");
      const time = document.createElement("time");
      time.textContent = formatTime(operation.CreationTime).slice(5);
      item.append(time, `${operation.Type} `, badge(operation.Status));
      for (const detail of operation.ScalingDetails || []) {
        const line = document.createElement("div");
        line.className = "progress";
        const group = groups.get(detail.InstanceGroupName);
        const from = detail.Original.CurrentCount;
        const to = detail.Desired.TargetCount;
        const now = group ? group.CurrentCount : to;
        const fraction = operation.Status !== "InProgress" || from === to
          ? 1 : (now - from) / (to - from);
        line.append(`${detail.InstanceGroupName}: ${from} → ${to} (now ${now})`, bar(fraction));
        item.append(line);
      }
      list.append(item);
    }
    if (!list.children.length) list.append(note("No operations."));
  }

  function renderFaults(cluster) {
    const list = $("faults");
    list.replaceChildren();
    for (const fault of cluster.faults) {
      const item = document.createElement("li");
      item.dataset.fault = fault.FaultId;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Remove";
      remove.addEventListener("click", () => removeFault(fault.FaultId));
      const delay = fault.DetectionDelaySeconds === undefined ? "" : `, noticed after ${fault.DetectionDelaySeconds} s`;
      item.append(remove, `${fault.Type} on ${fault.InstanceId || fault.InstanceGroupName}${delay}`);
      list.append(item);
    }
    if (!cluster.faults.length) list.append(note("No hardware faults."));
  }

  // ---- hover and details -------------------------------------------------------------------

  function kv(pairs) {
    const list = document.createElement("dl");
    list.className = "kv";
    for (const [key, value] of pairs) {
      if (value === null || value === undefined || value === "") continue;
      const term = document.createElement("dt");
      term.textContent = key;
      const description = document.createElement("dd");
      if (value instanceof Node) description.append(value);
      else description.textContent = String(value);
      list.append(term, description);
    }
    return list;
  }

  function nodePairs(node) {
    return [
      ["Instance", node.id || "(none yet)"],
      ["Logical id", node.lid],
      ["Status", node.message ? `${node.status}: ${node.message}` : node.status],
      ["Hostname", node.host],
      ["Type", node.type],
      ["Image", node.image],
      ["Held by", node.busy],
    ];
  }

  function showTip(cluster, node, event) {
    const tip = $("tip");
    const pairs = [["Group", node.group], ...nodePairs(node)];
    const faults = cluster.faults.filter((fault) => fault.InstanceId === node.id && node.id);
    if (faults.length) pairs.push(["Faults", faults.map((fault) => fault.Type).join(", ")]);
    tip.replaceChildren(kv(pairs));
    tip.hidden = false;
    const x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    const y = Math.min(event.clientY + 14, window.innerHeight - tip.offsetHeight - 8);
    tip.style.left = `${x}px`;
    tip.style.top = `${y}px`;
  }

  function hideTip() {
    $("tip").hidden = true;
  }

  function select(cluster, node, event) {
    const before = new Set(cluster.selected);
    const group = cluster.groups.get(node.group);
    if (event.shiftKey && cluster.anchor && cluster.anchor.group === node.group) {
      const from = Math.min(cluster.anchor.index, node.index);
      const to = Math.max(cluster.anchor.index, node.index);
      if (!(event.ctrlKey || event.metaKey)) cluster.selected.clear();
      for (let i = from; i <= to; i++) cluster.selected.add(group.nodes[i].row);
    } else if (event.ctrlKey || event.metaKey) {
      if (cluster.selected.has(node.row)) cluster.selected.delete(node.row);
      else cluster.selected.add(node.row);
      cluster.anchor = node;
    } else {
      cluster.selected.clear();
      cluster.selected.add(node.row);
      cluster.anchor = node;
    }
    for (const row of new Set([...before, ...cluster.selected])) {
      const item = cluster.byRow.get(row);
      if (!item) continue;
      const selected = cluster.selected.has(row);
      if (item.selected !== selected) {
        item.selected = selected;
        cluster.groups.get(item.group).grid.changed(item);
      }
    }
    updateSelection(cluster);
    schedulePaint(cluster);
    cluster.detailsRow = node.row;
    refreshDetails(cluster, true);
  }

  function selectGroup(group) {
    const cluster = state.cluster;
    if (!cluster) return;
    for (const node of group.nodes) {
      cluster.selected.add(node.row);
      if (!node.selected) {
        node.selected = true;
        group.grid.changed(node);
      }
    }
    updateSelection(cluster);
    schedulePaint(cluster);
  }

  function clearSelection(cluster) {
    for (const row of cluster.selected) {
      const node = cluster.byRow.get(row);
      if (node) {
        node.selected = false;
        cluster.groups.get(node.group).grid.changed(node);
      }
    }
    cluster.selected.clear();
    updateSelection(cluster);
    schedulePaint(cluster);
  }

  function updateSelection(cluster) {
    const count = cluster.selected.size;
    $("selected-count").textContent = `${count} node${count === 1 ? "" : "s"} selected`;
    for (const id of ["act-replace", "act-reboot", "act-delete", "act-clear", "fault-inject"]) {
      $(id).disabled = count === 0;
    }
  }

  let detailsTimer = 0;

  function refreshDetails(cluster, now) {
    if (detailsTimer) {
      if (!now) return;
      clearTimeout(detailsTimer);
    }
    detailsTimer = setTimeout(() => {
      detailsTimer = 0;
      loadDetails(cluster);
    }, now ? 0 : 300);
  }

  async function loadDetails(cluster) {
    const row = cluster.detailsRow;
    if (row === null || cluster.closed) return;
    const path = `/console/api/clusters/${encodeURIComponent(cluster.name)}/nodes/${row}?${scopeQuery()}`;
    let answer;
    try {
      answer = await api("GET", path);
    } catch (error) {
      return;
    }
    if (cluster.closed || cluster.detailsRow !== row) return;
    const body = $("details-body");
    body.className = "";
    if (answer.status !== 200) {
      body.textContent = `${answer.data.message}`;
      return;
    }
    const node = answer.data;
    const inside = node.Inside || {};
    const volumes = document.createElement("ul");
    for (const volume of inside.Volumes || []) {
      const item = document.createElement("li");
      const marker = volume.Marker ? ` marker "${volume.Marker}"` : "";
      item.textContent = `${volume.VolumeId} ${volume.Kind} ${volume.SizeInGB} GB${marker}`;
      volumes.append(item);
    }
    const faults = document.createElement("ul");
    for (const fault of node.Faults) {
      const item = document.createElement("li");
      item.textContent = `${fault.Type} (${fault.FaultId}) `;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Remove";
      remove.addEventListener("click", () => removeFault(fault.FaultId));
      item.append(remove);
      faults.append(item);
    }
    const events = document.createElement("ol");
    events.className = "events";
    for (const event of node.Events) {
      const item = document.createElement("li");
      item.className = `lvl-${event.EventLevel}`;
      const time = document.createElement("time");
      time.textContent = formatTime(event.EventTime).slice(5);
      item.append(time, event.Description);
      events.append(item);
    }
    body.replaceChildren(
      kv([
        ["Instance", node.InstanceId || "(none yet)"],
        ["Logical id", node.NodeLogicalId],
        ["Group", node.InstanceGroupName],
        ["Status", node.Message ? `${node.Status}: ${node.Message}` : node.Status],
        ["Hostname", node.PrivateDnsHostname],
        ["Private IP", node.PrivatePrimaryIp],
        ["Zone", node.AvailabilityZone],
        ["Type", node.InstanceType],
        ["Image", node.ImageReleaseVersion],
        ["Boot count", inside.BootCount],
        ["Launched", formatTime(node.LaunchTime)],
        ["Held by", node.Busy],
        ["Volumes", volumes.children.length ? volumes : null],
        ["Faults", faults.children.length ? faults : "none"],
        ["Last events", events.children.length ? events : "none"],
      ]),
    );
  }

  // ---- actions -----------------------------------------------------------------------------

  function line(kind, text) {
    const div = document.createElement("div");
    div.className = kind;
    div.textContent = text;
    return div;
  }

  function showResult(lines) {
    $("result").replaceChildren(...lines);
  }

  function selectedNodes(cluster) {
    return [...cluster.selected].map((row) => cluster.byRow.get(row)).filter(Boolean);
  }

  async function act(operation) {
    const cluster = state.cluster;
    if (!cluster) return;
    const nodes = selectedNodes(cluster);
    const params = { ClusterName: cluster.name };
    const ids = nodes.filter((node) => node.id).map((node) => node.id);
    const logical = nodes.filter((node) => !node.id && node.lid).map((node) => node.lid);
    if (ids.length) params.NodeIds = ids;
    if (logical.length) params.NodeLogicalIds = logical;
    showResult([line("muted", `${operation} on ${nodes.length} node(s)…`)]);
    let answer;
    try {
      answer = await api("POST", "/console/api/call", {
        Operation: operation,
        Params: params,
        Account: cluster.account,
        Region: cluster.region,
      });
    } catch (error) {
      if (!(error instanceof Refused)) showResult([line("failed", String(error))]);
      return;
    }
    if (answer.status !== 200) {
      showResult([line("failed", `${answer.status} ${answer.data.error}: ${answer.data.message}`)]);
      return;
    }
    showResult(awsAnswer(operation, answer.data));
  }

  // An AWS answer the way boto3 shows it: a ClientError's text, or the result's lists.
  function awsAnswer(operation, call) {
    const body = call.Body || {};
    if (call.Status !== 200) {
      const message = body.message || body.Message || "";
      return [
        line(
          "failed",
          `An error occurred (${call.ErrorCode}) when calling the ${operation} operation: ${message}`,
        ),
      ];
    }
    const lines = [line("muted", operation)];
    const successful = [...(body.Successful || []), ...(body.SuccessfulNodeLogicalIds || [])];
    lines.push(line("ok", `Successful (${successful.length}): ${successful.join(", ") || "none"}`));
    const failed = [...(body.Failed || []), ...(body.FailedNodeLogicalIds || [])];
    for (const item of failed) {
      const who = item.NodeId || item.NodeLogicalId;
      lines.push(line("failed", `Failed ${who}: ${item.ErrorCode || item.Code}: ${item.Message}`));
    }
    return lines;
  }

  async function injectFault(event) {
    event.preventDefault();
    const cluster = state.cluster;
    if (!cluster || !cluster.view) return;
    const type = $("fault-type").value;
    const delay = $("fault-delay").value;
    const lines = [];
    for (const node of selectedNodes(cluster)) {
      if (!node.id) {
        lines.push(line("failed", `${node.lid}: no instance to put a fault on yet`));
        continue;
      }
      const spec = { Kind: "hardware", Cluster: cluster.view.ClusterArn, InstanceId: node.id, Type: type };
      if (delay !== "") spec.DetectionDelaySeconds = Number(delay);
      let answer;
      try {
        answer = await api("POST", "/_hyperpod/faults", spec);
      } catch (error) {
        return;
      }
      if (answer.status === 201) {
        for (const fault of answer.data.Faults) {
          lines.push(line("ok", `Fault ${fault.FaultId}: ${fault.Type} on ${fault.InstanceId}`));
        }
      } else {
        lines.push(line("failed", `${answer.status} ${answer.data.error}: ${answer.data.message}`));
      }
    }
    showResult(lines);
  }

  async function removeFault(faultId) {
    try {
      const answer = await api("DELETE", `/_hyperpod/faults/${encodeURIComponent(faultId)}`);
      if (answer.status === 204) showResult([line("ok", `Fault ${faultId} removed`)]);
      else showResult([line("failed", `${answer.status} ${answer.data.error}: ${answer.data.message}`)]);
    } catch (error) {
      // shown by api()
    }
  }

  // ---- wiring ------------------------------------------------------------------------------

  $("auth-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    try {
      await api("GET", "/console/api/session");
    } catch (error) {
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $("token").value = "";
    route();
  });

  $("scope").addEventListener("submit", (event) => {
    event.preventDefault();
    state.account = $("account").value.trim();
    state.region = $("region").value.trim();
    const hash = `#/${state.account}/${encodeURIComponent(state.region)}`;
    if (location.hash === hash) route();
    else location.hash = hash;
  });

  $("clusters-refresh").addEventListener("click", () => {
    for (const timer of state.timers) clearTimeout(timer);
    state.timers = [];
    loadClusters();
    refreshClock();
  });

  $("advance").addEventListener("submit", (event) => {
    event.preventDefault();
    advanceClock("/_hyperpod/clock/advance", { seconds: Number($("advance-seconds").value) });
  });
  $("settle-button").addEventListener("click", () => advanceClock("/_hyperpod/clock/settle"));

  for (const id of ["act-replace", "act-reboot", "act-delete"]) {
    $(id).addEventListener("click", () => act($(id).dataset.op));
  }
  $("act-clear").addEventListener("click", () => state.cluster && clearSelection(state.cluster));
  $("fault-form").addEventListener("submit", injectFault);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.cluster) clearSelection(state.cluster);
  });
  window.addEventListener("hashchange", route);

  // For the browser test and for the curious: how fast the page was, and where a node's cell is.
  window.hpConsole = {
    metrics,
    rowOf(instanceId) {
      const cluster = state.cluster;
      if (!cluster) return null;
      for (const node of cluster.byRow.values()) if (node.id === instanceId) return node.row;
      return null;
    },
    cell(row) {
      const cluster = state.cluster;
      const node = cluster && cluster.byRow.get(row);
      if (!node) return null;
      const grid = cluster.groups.get(node.group).grid;
      grid.canvas.scrollIntoView({ block: "nearest" });
      const center = grid.center(node);
      return { x: center.x, y: center.y, shown: grid.shownStatus(node), instanceId: node.id };
    },
    rows(group) {
      const cluster = state.cluster;
      const found = cluster && cluster.groups.get(group);
      return found ? found.nodes.map((node) => node.row) : [];
    },
  };

  start();
})();
