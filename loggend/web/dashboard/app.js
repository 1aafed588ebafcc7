// loggen dashboard: one WebSocket frame per interval; no libraries, works offline.
"use strict";
const token = new URLSearchParams(location.search).get("token");
const withToken = (path) => (token ? `${path}?token=${encodeURIComponent(token)}` : path);
const $ = (id) => document.getElementById(id);
const nf = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const CHART_SECONDS = 300;
let points = [];          // [unix seconds, events/s, target events/s (it follows a profile and live changes)]
let targetRate = 0;
let retryDelay = 500;
let interval = 1;         // the sampler's seconds between frames (from /api/history)
let filling = false;

function fmtBytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  const i = Math.min(units.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
  return `${(n / 1024 ** i).toFixed(i ? 1 : 0)} ${units[i]}`;
}

function fmtRate(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return nf.format(n);
}

// A sink on its own (loggend sink --dashboard): what it received, lost, dropped and left behind, per stream.
function renderSink(m) {
  document.body.classList.add("sink-mode");
  document.title = "loggen sink";
  const k = m.sink || { received: 0, bytes: 0, lost: 0, kernel_drops: 0, backlog_bytes: 0, events_per_second: 0,
    loss_percent: 0, verdict: "counted", unknown_because: [], foreign: 0, outliers: 0, overflow: 0, streams: 0 };
  $("target").textContent = `← ${m.target.address}`;
  $("eps-label").textContent = "received / second";
  $("eps").textContent = nf.format(k.events_per_second);
  $("eps10").textContent = "-"; $("eps60").textContent = "-";
  $("own-received").textContent = nf.format(k.received);
  $("own-bytes").textContent = `${fmtBytes(k.bytes)} · ${nf.format(k.streams)} streams`;
  const unknown = k.verdict === "unknown";
  $("own-lost").textContent = unknown ? "unknown" : nf.format(k.lost);
  $("own-lost").className = `val${unknown || k.lost ? " bad" : ""}`;
  $("own-verdict").textContent = unknown ? k.unknown_because.join("; ") : `${k.loss_percent.toFixed(4)} %`;
  $("own-drops").textContent = nf.format(k.kernel_drops);
  $("own-behind").textContent = fmtBytes(k.backlog_bytes);
  $("own-behind").className = `val${k.backlog_bytes >= 1 << 20 ? " bad" : ""}`;
  $("own-behind-detail").textContent = k.unread ? `${nf.format(k.unread)} unread at a stop` : "queued in the kernel now";
  $("own-apart").textContent = nf.format(k.foreign + k.outliers + k.overflow);
  $("own-apart-detail").textContent =
    `outliers ${nf.format(k.outliers)} · foreign ${nf.format(k.foreign)} · over the cap ${nf.format(k.overflow)}`;
  const body = $("streams").tBodies[0];
  const rows = m.streams || [];
  while (body.rows.length > rows.length) body.deleteRow(-1);
  rows.forEach((r, i) => {
    const tr = body.rows[i] || body.insertRow();
    while (tr.cells.length < 6) tr.insertCell();
    [r.stream, nf.format(r.received), nf.format(r.lost), nf.format(r.late), nf.format(r.duplicates),
      nf.format(r.outliers)].forEach((v, c) => { tr.cells[c].textContent = v; });
    tr.cells[2].className = r.lost ? "bad" : "";
  });
  $("streams-note").textContent = m.streams_not_shown ? `and ${nf.format(m.streams_not_shown)} more not shown` : "";
  renderSystem(m.system);
  addPoint([m.time, k.events_per_second, 0]);
}

function renderSystem(s) {
  $("sys-cpu").textContent = `${s.cpu_percent.toFixed(0)} %`;
  $("sys-mem").textContent = `${s.memory_percent.toFixed(0)} %`;
  $("sys-mem-detail").textContent = `${fmtBytes(s.memory_used_bytes)} of ${fmtBytes(s.memory_total_bytes)}`;
  $("sys-procs").textContent = nf.format(s.processes);
  $("loggen-mem").textContent = fmtBytes(s.loggen_memory_bytes);
  $("loggen-limit").textContent = s.loggen_memory_limit_bytes ? `limit ${fmtBytes(s.loggen_memory_limit_bytes)}` : "no limit";
}

function render(m) {
  if (m.mode === "sink") { targetRate = 0; renderSink(m); return; }
  targetRate = m.target.events_per_second;
  $("target").textContent = `→ ${m.target.address}`;
  $("transport").textContent = m.transport || "-";
  $("eps").textContent = nf.format(m.events_per_second["1s"]);
  $("eps10").textContent = nf.format(m.events_per_second["10s"]);
  $("eps60").textContent = nf.format(m.events_per_second["60s"]);
  $("target-eps").textContent = m.target.paused ? "paused" : targetRate ? nf.format(targetRate) : "unlimited";
  $("achievement").textContent = m.achievement_percent == null ? "-" : `${m.achievement_percent.toFixed(1)} %`;
  $("events").textContent = nf.format(m.totals.events);
  $("running").textContent = `${m.running} / ${m.workers}`;
  $("restarts").textContent = nf.format(m.totals.restarts);
  const errs = Object.entries(m.totals.errors);
  $("errors").textContent = nf.format(errs.reduce((a, [, v]) => a + v, 0));
  $("error-kinds").textContent = errs.filter(([, v]) => v).map(([k, v]) => `${k} ${nf.format(v)}`).join(" · ");
  const refusing = m.refusing || [];
  $("refusing").hidden = !refusing.length;
  $("refusing").textContent = refusing.length ? `${refusing.slice(0, 4).map((r) => r.address).join(", ")}` +
    `${refusing.length > 4 ? ` and ${refusing.length - 4} more` : ""} refuse${refusing.length === 1 ? "s" : ""}: ` +
    "nothing listens there" : "";
  const stream = m.transport === "tcp" || m.transport === "tls";
  $("pushback-tile").hidden = !stream;
  if (stream) {
    $("pushback").textContent = `${m.totals.blocked_seconds.toFixed(1)} s`;
    $("pushback-detail").textContent =
      `reconnects ${nf.format(m.totals.reconnects)} · possibly lost ${nf.format(m.totals.possibly_lost)}`;
  }
  renderSystem(m.system);
  if (m.sink) {
    $("sink").textContent = `${nf.format(m.sink.received)} / ${nf.format(m.sink.lost)}`;
    const flight = m.sink.in_flight == null ? "" : ` · in flight ${nf.format(m.sink.in_flight)}`;
    $("sink-detail").textContent = `loss ${m.sink.loss_percent.toFixed(3)} % (by sequence)${flight}`;
  }
  renderWorkers(m.worker_status.filter((w) => w.active));
  addPoint([m.time, m.events_per_second["1s"], targetRate]);
}

function renderWorkers(workers) {
  const grid = $("workers");
  while (grid.children.length > workers.length) grid.lastChild.remove();
  workers.forEach((w, i) => {
    let tile = grid.children[i];
    if (!tile) {
      tile = document.createElement("div");
      tile.innerHTML = '<b></b> <span class="muted port"></span><div class="eps"></div><div class="muted detail"></div>';
      grid.appendChild(tile);
    }
    const link = w.status === "running" && w.link && w.link !== "ok" ? w.link : "";
    tile.className = `worker ${w.status}${link ? ` ${link}` : ""}`;
    tile.title = `worker ${w.index}: ${w.status}${link ? ` (${link})` : ""}, pid ${w.pid}, cpu ${w.cpu ?? "-"}`;
    tile.querySelector("b").textContent = `w${w.index}`;
    tile.querySelector(".port").textContent = `:${w.port ?? "-"} ${link || w.status}`;
    tile.querySelector(".eps").textContent = `${fmtRate(w.events_per_second)} ev/s`;
    const sink = w.received === undefined ? "" : ` · lost ${nf.format(w.lost)}`;
    const blocked = w.blocked_seconds ? ` · blocked ${w.blocked_seconds.toFixed(1)} s` : "";
    tile.querySelector(".detail").textContent =
      `cpu ${w.cpu_percent.toFixed(0)} % · restarts ${w.restarts}${w.errors ? ` · err ${nf.format(w.errors)}` : ""}${blocked}${sink}`;
  });
}

// The feed sends the newest frame only: a page that fell behind (a busy browser or machine) skips
// frames, so a gap in the points is filled from the server's history, which has every sample.
function addPoint(p) {
  const gap = points.length && p[0] - points[points.length - 1][0] > 1.5 * interval;
  points.push(p);
  trimPoints();
  drawChart();
  if (gap) loadHistory();
}

function mergePoints(more) {
  const byTime = new Map(points.map((p) => [Math.round(p[0] * 1000), p]));
  more.forEach((p) => byTime.set(Math.round(p[0] * 1000), p));
  points = [...byTime.values()].sort((a, b) => a[0] - b[0]);
  trimPoints();
  drawChart();
}

function loadHistory() {
  if (filling) return;
  filling = true;
  fetch(withToken("/api/history"))
    .then((r) => (r.ok ? r.json() : { points: [] }))
    .then((h) => { if (h.interval) interval = h.interval; mergePoints(h.points); })
    .catch(() => {})
    .finally(() => { filling = false; });
}

function trimPoints() {
  const last = points.length ? points[points.length - 1][0] : 0;
  points = points.filter(([t]) => t >= last - CHART_SECONDS);
}

function drawChart() {
  const canvas = $("chart");
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== w * dpr || canvas.height !== h * dpr) { canvas.width = w * dpr; canvas.height = h * dpr; }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const pad = { l: 58, r: 8, t: 8, b: 20 };
  const maxY = Math.max(targetRate * 1.15, ...points.map(([, v, target]) => Math.max(v * 1.1, (target || 0) * 1.15)), 10);
  const now = points.length ? points[points.length - 1][0] : Date.now() / 1000;
  const x = (t) => pad.l + ((t - (now - CHART_SECONDS)) / CHART_SECONDS) * (w - pad.l - pad.r);
  const y = (v) => h - pad.b - (v / maxY) * (h - pad.t - pad.b);
  g.font = "11px system-ui"; g.fillStyle = "#8b98a5"; g.strokeStyle = "#263241"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = (maxY * i) / 4;
    g.beginPath(); g.moveTo(pad.l, y(v)); g.lineTo(w - pad.r, y(v)); g.stroke();
    g.fillText(fmtRate(v), 4, y(v) + 4);
  }
  g.fillText(`last ${CHART_SECONDS / 60} min`, pad.l, h - 4);
  drawTarget(g, x, y, pad.l, w - pad.r);
  g.strokeStyle = "#4fb3ff"; g.lineWidth = 2; g.beginPath();
  points.forEach(([t, v], i) => (i ? g.lineTo(x(t), y(v)) : g.moveTo(x(t), y(v))));
  g.stroke();
}

// The target as it was at each point (dashed, in steps): flat for a constant rate, the profile's
// shape for a profile, a step at each live change; nothing where it was 0 (unlimited or paused).
function drawTarget(g, x, y, left, right) {
  g.strokeStyle = "#d29922"; g.lineWidth = 1.5; g.setLineDash([6, 4]);
  let open = false;
  g.beginPath();
  points.forEach(([t, , target], i) => {
    if (!target) { open = false; return; }
    if (!open) { g.moveTo(x(t), y(target)); open = true; return; }
    g.lineTo(x(t), y(points[i - 1][2])); g.lineTo(x(t), y(target));
  });
  if (open && points.length) g.lineTo(right, y(points[points.length - 1][2]));
  if (!points.length && targetRate) { g.moveTo(left, y(targetRate)); g.lineTo(right, y(targetRate)); }
  g.stroke();
  g.setLineDash([]);
}

function setConn(state, text) {
  const el = $("conn");
  el.className = `conn ${state}`;
  el.textContent = text;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}${withToken("/ws")}`);
  ws.onopen = () => { setConn("live", "live"); retryDelay = 500; };
  ws.onmessage = (e) => { const m = JSON.parse(e.data); if (m.target) render(m); };
  ws.onclose = () => {
    setConn("down", "reconnecting…");
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 5000);
  };
}

loadHistory();
window.addEventListener("resize", drawChart);
connect();
