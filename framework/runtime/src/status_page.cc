#include "status_page.h"

namespace streamrun::runtime {

namespace {

// Kept in one raw string so that the page ships inside the binary and works offline.
constexpr std::string_view kPage = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>streamrun</title>
<style>
  body { font: 14px/1.4 "DejaVu Sans", sans-serif; margin: 16px 24px; color: #111827; background: #fff; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  h2 { font-size: 15px; margin: 18px 0 6px; }
  .sub { color: #4b5563; margin-bottom: 10px; }
  .banner { padding: 6px 10px; border-radius: 4px; margin: 8px 0; display: none; }
  .banner.bad { display: block; background: #fee2e2; color: #991b1b; }
  .banner.warn { display: block; background: #fef3c7; color: #92400e; }
  .figures { display: flex; flex-wrap: wrap; gap: 10px; }
  .figure { border: 1px solid #d1d5db; border-radius: 6px; padding: 6px 12px; min-width: 110px; }
  .figure .v { font-size: 18px; font-weight: bold; }
  .figure .l { color: #4b5563; font-size: 12px; }
  .figure.alert { border-color: #dc2626; background: #fee2e2; }
  #topology { max-width: 100%; height: auto; }
  svg text { font: 12px "DejaVu Sans", sans-serif; }
  .op rect { fill: #dbeafe; stroke: #1e40af; stroke-width: 1.5; }
  .op.flowing rect { fill: #bbf7d0; stroke: #166534; }
  .op.elsewhere rect { fill: #f3f4f6; stroke: #9ca3af; stroke-dasharray: 4 3; }
  .op.elsewhere text { fill: #6b7280; }
  .legend { color: #4b5563; font-size: 12px; margin-bottom: 6px; }
  .legend span { display: inline-block; width: 12px; height: 12px; border: 1px solid #6b7280;
                 vertical-align: -2px; margin: 0 4px 0 12px; border-radius: 2px; }
  .topic rect { fill: #fef3c7; stroke: #92400e; stroke-width: 1.5; }
  .topic.dead rect { fill: #fecaca; stroke: #991b1b; }
  .edge { fill: none; stroke: #6b7280; stroke-width: 1.5; }
  .rate { font-weight: bold; }
  table { border-collapse: collapse; }
  td, th { border-bottom: 1px solid #e5e7eb; padding: 3px 10px; text-align: left; }
  td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
  .tag { border-radius: 3px; padding: 0 5px; font-size: 12px; }
  .tag.paused { background: #fef3c7; }
  .tag.restoring { background: #e0e7ff; }
</style>
</head>
<body>
<h1 id="title">streamrun</h1>
<div class="sub" id="subtitle">connecting…</div>
<div class="banner" id="banner"></div>
<div class="figures" id="figures"></div>
<h2>Topology</h2>
<div class="legend">
<span style="background:#bbf7d0"></span>records flowing (records/s into the operator)
<span style="background:#dbeafe"></span>idle
<span style="background:#f3f4f6"></span>runs on other instances
<span style="background:#fef3c7;border-radius:6px"></span>topic
<span style="background:#fecaca;border-radius:6px"></span>dead-letter topic
</div>
<svg id="topology" width="100" height="100" role="img" aria-label="topology"></svg>
<h2>Tasks and partitions</h2>
<table id="tasks"><thead><tr><th>task</th><th>partitions (lag)</th><th>status</th>
<th class="n">processed</th><th class="n">buffered</th><th class="n">restored</th>
<th class="n">dead-lettered</th><th class="n">state size</th></tr></thead><tbody></tbody></table>
<div id="windows-section" hidden>
<h2>Windows</h2>
<div class="legend">the latest windows of each window store on this instance, as of its last
commit (times in UTC)</div>
<div id="windows"></div>
</div>
<div id="calls-section" hidden>
<h2>Calls to other services</h2>
<table id="calls"><thead><tr><th>endpoint</th><th>circuit breaker</th>
<th class="n">in flight</th><th class="n">ok</th><th class="n">failed</th>
<th class="n">timed out</th><th class="n">rejected</th><th class="n">retried</th>
<th class="n">opened</th><th class="n">closed</th></tr></thead><tbody></tbody></table>
</div>
<script>
"use strict";
const SVG = "http://www.w3.org/2000/svg";
let drawnFor = "";     // the topology the diagram shows
const boxes = {};      // node name -> {group, rate text}

function fmt(n) { return Math.round(n).toLocaleString("en-US"); }
// A window bound: a time of day for epoch milliseconds, the number otherwise.
function when(ms) { return ms >= 1e12 ? new Date(ms).toISOString().slice(11, 23) : String(ms); }
// A stored value as the state queries give it: JSON, text, or hex (an 8-byte count: a number).
function valueText(x) {
  if ("value" in x) return typeof x.value === "string" ? x.value : JSON.stringify(x.value);
  const hex = x.value_hex || "";
  return hex.length === 16 ? BigInt.asIntN(64, BigInt("0x" + hex)).toString() : "0x" + hex;
}
function row(body, cells) {
  const r = body.insertRow();
  for (const [text, numeric] of cells) {
    const c = r.insertCell();
    c.textContent = text;
    if (numeric) c.className = "n";
  }
  return r;
}
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}
function el(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

// One row per sub-topology, operators in columns by their distance from the row's sources.
// A topic read by a row starts it, unless another row writes it: then it ends the writer's
// row, with an edge down to its readers. Dead-letter topics get a row of their own.
function layout(graph) {
  const byName = {};
  for (const n of graph.nodes) byName[n.name] = n;
  const parents = {}, writers = {}, readers = {};
  for (const n of graph.nodes) parents[n.name] = [];
  for (const [from, to] of graph.edges) {
    if (!byName[from] || !byName[to]) continue;
    if (from.startsWith("topic:")) (readers[from] = readers[from] || []).push(to);
    else if (to.startsWith("topic:")) (writers[to] = writers[to] || []).push(from);
    else parents[to].push(from);
  }
  const depth = {};
  const depthOf = (name, seen) => {
    if (name in depth) return depth[name];
    if (seen.has(name)) return 0;
    seen.add(name);
    let d = 1;
    for (const p of parents[name]) d = Math.max(d, depthOf(p, seen) + 1);
    return depth[name] = d;
  };
  const rows = [];
  const place = {};
  const put = (node, row, column) => {
    rows[row] = rows[row] || [];
    rows[row].push({node: node, column: column});
    place[node.name] = {row: row, column: column};
  };
  for (const n of graph.nodes) {
    if (n.subtopology === undefined) continue;
    put(n, n.subtopology, depthOf(n.name, new Set()));
  }
  const deadRow = rows.length;
  for (const n of graph.nodes) {
    if (n.subtopology !== undefined) continue;
    if (n.kind === "dead-letter topic") {
      put(n, deadRow, (rows[deadRow] || []).length);
    } else if (writers[n.name]) {
      const w = place[writers[n.name][0]];
      put(n, w.row, w.column + 1);
    } else if (readers[n.name]) {
      put(n, place[readers[n.name][0]].row, 0);
    } else {
      put(n, deadRow, (rows[deadRow] || []).length);
    }
  }
  // Two topics read by one row share its first column: stack them.
  const slots = {};
  const positions = {};
  rows.forEach((row, r) => (row || []).forEach(item => {
    const key = r + ":" + item.column;
    slots[key] = (slots[key] || 0) + 1;
    positions[item.node.name] = {row: r, column: item.column, stack: slots[key] - 1};
  }));
  return positions;
}

function drawTopology(graph) {
  const svg = document.getElementById("topology");
  svg.replaceChildren();
  const W = 150, H = 54, GX = 34, GY = 26;
  const positions = layout(graph);
  // Rows are as tall as their deepest stack.
  const rowHeight = [];
  for (const name in positions) {
    const p = positions[name];
    rowHeight[p.row] = Math.max(rowHeight[p.row] || 1, p.stack + 1);
  }
  const rowTop = [];
  let top = 10;
  for (let r = 0; r < rowHeight.length; r++) {
    rowTop[r] = top;
    top += (rowHeight[r] || 0) * (H + GY);
  }
  const pos = {};
  let width = 0;
  for (const name in positions) {
    const p = positions[name];
    pos[name] = {x: 10 + p.column * (W + GX), y: rowTop[p.row] + p.stack * (H + GY)};
    width = Math.max(width, pos[name].x + W + 10);
  }
  // Scaled down to the window when wider (a long pipeline), never up.
  svg.setAttribute("viewBox", `0 0 ${width} ${top}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", top);
  const defs = el("defs", {});
  const marker = el("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
                               markerWidth: 7, markerHeight: 7, orient: "auto"});
  marker.appendChild(el("path", {d: "M0,0 L10,5 L0,10 z", fill: "#6b7280"}));
  defs.appendChild(marker);
  svg.appendChild(defs);
  for (const [from, to] of graph.edges) {
    const a = pos[from], b = pos[to];
    if (!a || !b) continue;
    let d;
    if (b.x > a.x) {
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
      d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
    } else {  // down to the next row: bottom to top
      const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y, my = (y1 + y2) / 2;
      d = `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}`;
    }
    svg.appendChild(el("path", {class: "edge", "marker-end": "url(#arrow)", d: d}));
  }
  for (const n of graph.nodes) {
    const p = pos[n.name];
    const topic = n.kind === "topic" || n.kind === "dead-letter topic";
    const g = el("g", {class: topic ? (n.kind === "topic" ? "topic" : "topic dead") : "op",
                       "data-node": n.name, transform: `translate(${p.x},${p.y})`});
    // The whole of what the box may cut short, on hover.
    g.appendChild(el("title", {}, topic ? n.topic + " (" + n.kind + ")"
                                        : n.name + " (" + n.kind + ")" +
                                              (n.stores && n.stores.length ? ", stores: " + n.stores.join(", ") : "")));
    g.appendChild(el("rect", {width: W, height: H, rx: topic ? 18 : 6}));
    const label = topic ? n.topic : n.name;
    g.appendChild(el("text", {x: 8, y: 17, "font-weight": "bold"},
                     label.length > 20 ? label.slice(0, 19) + "…" : label));
    const detail = topic ? n.kind : n.kind + (n.stores && n.stores.length ? " · " + n.stores.join(", ") : "");
    g.appendChild(el("text", {x: 8, y: 32}, detail.length > 22 ? detail.slice(0, 21) + "…" : detail));
    const rate = el("text", {x: 8, y: 47, class: "rate"}, topic ? "" : "0 rec/s");
    g.appendChild(rate);
    svg.appendChild(g);
    boxes[n.name] = {group: g, rate: rate, topic: topic, subtopology: n.subtopology};
  }
}

function figure(label, value, alert) {
  const d = document.createElement("div");
  d.className = "figure" + (alert ? " alert" : "");
  d.innerHTML = `<div class="v"></div><div class="l"></div>`;
  d.firstChild.textContent = value;
  d.lastChild.textContent = label;
  return d;
}

function show(status) {
  document.title = "streamrun · " + status.application_id;
  document.getElementById("title").textContent = status.application_id;
  document.getElementById("subtitle").textContent =
      "instance " + (status.instance || "(no application.server)") + " · " +
      (status.ready ? "ready" : "not ready: " + status.not_ready);
  const key = JSON.stringify(status.topology);
  if (key !== drawnFor) { drawTopology(status.topology); drawnFor = key; }

  const local = new Set(status.local_subtopologies);
  for (const name in boxes) {
    const box = boxes[name];
    if (box.topic) continue;
    const counts = status.node_counts[name];
    const r = counts ? counts.in_per_second : 0;
    const elsewhere = !local.has(box.subtopology);
    box.rate.textContent = elsewhere ? "on other instances" : fmt(r) + " rec/s";
    box.group.classList.toggle("flowing", !elsewhere && r > 0);
    box.group.classList.toggle("elsewhere", elsewhere);
  }

  const t = status.totals, rates = status.rates;
  const figures = document.getElementById("figures");
  figures.replaceChildren(
      figure("processed/s", fmt(rates.processed)),
      figure("produced/s", fmt(rates.produced)),
      figure("lag (records)", fmt(t.lag)),
      figure("dead-lettered (" + fmt(rates.dead_lettered) + "/s)", fmt(t.dead_lettered),
             t.dead_lettered > 0),
      figure("skipped", fmt(t.skipped), t.skipped > 0),
      figure("paused partitions", fmt(status.tasks.filter(x => x.paused).length)),
      figure("restoring tasks", fmt(status.tasks.filter(x => x.restoring).length)),
      figure("restored entries", fmt(t.restored)),
      figure("state", bytes(t.state_bytes)),
      figure("tasks", fmt(t.active_tasks)),
      figure("commit failures", fmt(t.commit_failures), t.commit_failures > 0));

  const body = document.querySelector("#tasks tbody");
  body.replaceChildren();
  for (const task of status.tasks) {
    const row = body.insertRow();
    const cell = (text, numeric) => {
      const c = row.insertCell();
      c.textContent = text;
      if (numeric) c.className = "n";
      return c;
    };
    cell(task.task);
    cell((task.partitions || []).map(x => `${x.topic}[${x.partition}]` +
                                          (x.lag !== undefined ? ` (${fmt(x.lag)})` : "")).join(", "));
    const state = cell("");
    for (const [flag, text] of [["paused", "paused"], ["restoring", "restoring"]]) {
      if (!task[flag]) continue;
      const tag = document.createElement("span");
      tag.className = "tag " + flag;
      tag.textContent = text;
      state.appendChild(tag);
    }
    if (!task.paused && !task.restoring) state.textContent = "running";
    cell(fmt(task.processed), true);
    cell(fmt(task.buffered || 0), true);
    cell(fmt(task.restored), true);
    cell(fmt(task.dead_lettered), true);
    cell(bytes(task.state_bytes), true);
  }

  const windows = status.windows || [];
  document.getElementById("windows-section").hidden = windows.length === 0;
  const holder = document.getElementById("windows");
  holder.replaceChildren();
  for (const store of windows) {
    const title = document.createElement("h3");
    title.className = "legend";
    title.textContent = `store ${store.store} (${store.kind} windows)`;
    const table = document.createElement("table");
    row(table.createTHead(), [["key"], ["window"], ["value"]]);
    const rows = table.createTBody();
    for (const w of store.latest) {
      const bounds = store.kind === "session" ? `[${when(w.window_start)}, ${when(w.window_end)}]`
                                              : `[${when(w.window_start)}, ${when(w.window_end)})`;
      row(rows, [[w.key !== undefined ? w.key : "0x" + w.key_hex], [bounds], [valueText(w)]]);
    }
    if (store.latest.length === 0) row(rows, [["no windows yet"], [""], [""]]);
    holder.append(title, table);
  }

  const calls = status.calls || [];
  document.getElementById("calls-section").hidden = calls.length === 0;
  const callRows = document.querySelector("#calls tbody");
  callRows.replaceChildren();
  for (const c of calls) {
    const r = row(callRows, [[c.endpoint], [c.breaker], [fmt(c.in_flight), true], [fmt(c.ok), true],
                             [fmt(c.failed), true], [fmt(c.timed_out), true],
                             [fmt(c.rejected), true], [fmt(c.retried), true],
                             [fmt(c.opened), true], [fmt(c.closed), true]]);
    if (c.breaker === "open" || c.breaker === "half-open") r.cells[1].className = "tag paused";
  }
}

async function poll() {
  const banner = document.getElementById("banner");
  try {
    const answer = await fetch("api/status", {cache: "no-store"});
    if (!answer.ok) throw new Error("HTTP " + answer.status);
    show(await answer.json());
    banner.className = "banner";
  } catch (e) {
    banner.className = "banner bad";
    banner.textContent = "the instance does not answer (" + e.message + "); the figures below are old";
  }
  setTimeout(poll, 1000);
}
poll();
</script>
</body>
</html>
)html";

}  // namespace

std::string_view status_page_html() noexcept {
  return kPage;
}

}  // namespace streamrun::runtime
