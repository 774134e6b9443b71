// The History section: charts of the store's performance snapshots (GET /api/history).

import { api } from "./api.js";
import { $, el, setText } from "./ui.js";
import { LineChart } from "./linechart.js";

const METRICS = [
  { metric: "fps", title: "Processed FPS (all streams)", color: "#4ea1ff", format: (v) => v.toFixed(1) },
  { metric: "latency_p99", title: "Latency p99 (ms)", color: "#d29922", format: (v) => v.toFixed(0) + " ms" },
  { metric: "hit_rate", title: "Cache hit rate", color: "#3fb950", min: 0, max: 1, format: (v) => Math.round(v * 100) + "%" },
  { metric: "rss", title: "Resident memory (MB)", color: "#bc8cff", format: (v) => v.toFixed(0) + " MB" },
  { metric: "cpu", title: "CPU (%)", color: "#ff7b72", min: 0, format: (v) => v.toFixed(0) + "%" },
];
const charts = new Map();
let timer = null;

export function init() {
  if (document.body.dataset.history !== "on") {
    setText($("#history-note"), "This server keeps no performance history (no GET /api/history).");
    $("#history-refresh").disabled = true;
    $("#history-range").disabled = true;
    return;
  }
  const box = $("#history-charts");
  for (const m of METRICS) {
    const canvas = el("canvas", { class: "chart", dataset: { metric: m.metric, points: "0" } });
    box.append(el("figure", {}, el("figcaption", { text: m.title }), canvas));
    charts.set(m.metric, new LineChart(canvas, {
      color: m.color, fill: m.color + "22", min: m.min ?? 0, max: m.max ?? null,
      format: m.format, maxPoints: 2000, empty: "no snapshots yet",
    }));
  }
  $("#history-range").addEventListener("change", load);
  $("#history-refresh").addEventListener("click", load);
  load();
  timer = setInterval(load, 15000);
}

export function stop() {
  clearInterval(timer);
}

// Accept [{ts, value}], [{t, v}], [[t, v]] or {points: [...]}; times in epoch seconds or ISO strings.
function toPoints(data) {
  const rows = Array.isArray(data) ? data : data.points || data.data || data.items || [];
  return rows.map((r) => {
    if (Array.isArray(r)) return [toSeconds(r[0]), toNumber(r[1])];
    return [toSeconds(r.ts ?? r.t ?? r.time ?? r.timestamp), toNumber(r.value ?? r.v)];
  });
}

function toSeconds(t) {
  if (typeof t === "number") return t > 1e12 ? t / 1000 : t;
  const ms = Date.parse(t);
  return Number.isFinite(ms) ? ms / 1000 : NaN;
}

function toNumber(v) {
  return v === null || v === undefined ? null : Number(v);
}

async function load() {
  if (document.body.classList.contains("signed-out")) return;
  const range = Number($("#history-range").value);
  let failures = 0;
  let total = 0;
  await Promise.all(METRICS.map(async (m) => {
    try {
      const data = await api(`/api/history?metric=${m.metric}&since=${range}`);
      const pts = toPoints(data);
      total += pts.length;
      charts.get(m.metric).setData(pts);
    } catch (err) {
      failures += 1;
      setText($("#history-note"), `History unavailable: ${err.message}`);
    }
  }));
  if (!failures) {
    setText($("#history-note"), total ? "" : "No snapshots in this range yet; they are taken periodically.");
  }
}
