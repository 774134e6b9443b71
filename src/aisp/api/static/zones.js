// Zones and lines over each stream's live view: the shapes drawn in an SVG laid over the MJPEG
// image (same box, same "contain" fit), each zone's current count and each line's in/out under
// the view, and, for admins, "Draw zone": click points on the view, then save the polygon
// (PUT /api/streams/{id}/zones, relative coordinates). Reads GET /api/streams (one request for
// every stream: no 404 for a stream removed meanwhile) every 2 s.

import { api } from "./api.js";
import { $$, el, toast } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 2000;
const state = new Map(); // stream id -> { spec, drawing: [[x, y], ...] | null }

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function frameSize(card) {
  const img = card.querySelector("img.mjpeg");
  return img && img.naturalWidth ? [img.naturalWidth, img.naturalHeight] : null;
}

function toPixels(points, relative, [w, h]) {
  return points.map(([x, y]) => (relative ? [x * w, y * h] : [x, y]));
}

function ensureOverlay(card) {
  let overlay = card.querySelector("svg.zones-overlay");
  if (overlay) return overlay;
  overlay = svg("svg", { class: "zones-overlay", preserveAspectRatio: "xMidYMid meet" });
  overlay.addEventListener("click", (ev) => onDrawClick(card, overlay, ev));
  card.querySelector(".view").append(overlay);
  const bar = el("div", { class: "zones-bar small muted" },
    el("span", { class: "zones-counts" }),
    el("span", { class: "btn-row admin-only" },
      el("button", { class: "btn btn-small zones-draw", type: "button", text: "Draw zone" }),
      el("button", { class: "btn btn-small zones-save", type: "button", text: "Save zone", hidden: true }),
      el("button", { class: "btn btn-small zones-cancel", type: "button", text: "Cancel", hidden: true })));
  card.querySelector(".view").after(bar);
  bar.querySelector(".zones-draw").addEventListener("click", () => startDrawing(card, overlay));
  bar.querySelector(".zones-save").addEventListener("click", () => saveDrawing(card));
  bar.querySelector(".zones-cancel").addEventListener("click", () => stopDrawing(card, overlay));
  return overlay;
}

function draw(card) {
  const id = card.dataset.streamId;
  const st = state.get(id);
  const overlay = ensureOverlay(card);
  const size = frameSize(card);
  overlay.replaceChildren();
  if (!st || !size) return;
  overlay.setAttribute("viewBox", `0 0 ${size[0]} ${size[1]}`);
  const stroke = Math.max(2, size[0] / 320);
  const counts = st.spec.stats || {};
  for (const z of st.spec.zones || []) {
    const pts = toPixels(z.polygon, z.relative, size);
    overlay.append(svg("polygon", {
      points: pts.map((p) => p.join(",")).join(" "), fill: "rgba(64,160,255,0.15)", stroke: "#40a0ff",
      "stroke-width": stroke, "data-zone": z.name,
    }));
    const n = counts.zones?.[z.name]?.count ?? 0;
    const label = svg("text", { x: pts[0][0] + 4, y: pts[0][1] + 14 * stroke / 2, fill: "#40a0ff",
      "font-size": 12 * stroke / 2 });
    label.textContent = `${z.name} (${n})`;
    overlay.append(label);
  }
  for (const ln of st.spec.lines || []) {
    const [a, b] = toPixels([ln.start, ln.end], ln.relative, size);
    overlay.append(svg("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], stroke: "#ffb020",
      "stroke-width": stroke, "data-line": ln.name }));
    const c = counts.lines?.[ln.name] || { in: 0, out: 0 };
    const label = svg("text", { x: a[0] + 4, y: a[1] - 4, fill: "#ffb020", "font-size": 12 * stroke / 2 });
    label.textContent = `${ln.name} in ${c.in} / out ${c.out}`;
    overlay.append(label);
  }
  if (st.drawing) {
    overlay.append(svg("polyline", {
      points: st.drawing.map(([x, y]) => `${x * size[0]},${y * size[1]}`).join(" "),
      fill: "rgba(120,255,120,0.15)", stroke: "#60e060", "stroke-width": stroke, "stroke-dasharray": "6 4",
    }));
  }
  const parts = [
    ...(st.spec.zones || []).map((z) => `${z.name}: ${counts.zones?.[z.name]?.count ?? 0}`),
    ...(st.spec.lines || []).map((l) => `${l.name}: in ${counts.lines?.[l.name]?.in ?? 0} / out ${counts.lines?.[l.name]?.out ?? 0}`),
  ];
  card.querySelector(".zones-counts").textContent = parts.join(" · ");
}

function startDrawing(card, overlay) {
  const st = state.get(card.dataset.streamId);
  if (!st || !frameSize(card)) return toast("Start the stream to draw on its live view.", "error");
  st.drawing = [];
  overlay.classList.add("drawing");
  card.querySelector(".zones-save").hidden = false;
  card.querySelector(".zones-cancel").hidden = false;
  card.querySelector(".zones-draw").hidden = true;
  toast("Click the corners of the zone on the view, then Save zone.", "ok");
}

function stopDrawing(card, overlay) {
  const st = state.get(card.dataset.streamId);
  if (st) st.drawing = null;
  overlay.classList.remove("drawing");
  card.querySelector(".zones-save").hidden = true;
  card.querySelector(".zones-cancel").hidden = true;
  card.querySelector(".zones-draw").hidden = false;
  draw(card);
}

function onDrawClick(card, overlay, ev) {
  const st = state.get(card.dataset.streamId);
  const size = frameSize(card);
  if (!st?.drawing || !size) return;
  const pt = overlay.createSVGPoint();
  pt.x = ev.clientX;
  pt.y = ev.clientY;
  const p = pt.matrixTransform(overlay.getScreenCTM().inverse());
  const clamp = (v) => Math.min(1, Math.max(0, v));
  st.drawing.push([clamp(p.x / size[0]), clamp(p.y / size[1])].map((v) => Math.round(v * 10000) / 10000));
  draw(card);
}

async function saveDrawing(card) {
  const id = card.dataset.streamId;
  const st = state.get(id);
  if (!st?.drawing || st.drawing.length < 3) return toast("A zone needs at least 3 points.", "error");
  const name = (prompt("Zone name (letters, digits, _ . -):", `zone${(st.spec.zones || []).length + 1}`) || "").trim();
  if (!name) return;
  const keep = (z) => {
    const out = { ...z };
    for (const k of Object.keys(out)) if (out[k] === null) delete out[k];
    return out;
  };
  const body = {
    zones: [...(st.spec.zones || []).map(keep), { name, polygon: st.drawing, relative: true }],
    lines: (st.spec.lines || []).map(keep),
  };
  try {
    st.spec = await api(`/api/streams/${encodeURIComponent(id)}/zones`, { method: "PUT", body });
    toast(`Zone ${name} saved on ${id}`, "ok");
    stopDrawing(card, card.querySelector("svg.zones-overlay"));
  } catch (err) {
    toast("Save zone: " + err.message, "error");
  }
}

async function refresh() {
  const cards = $$(".stream[data-stream-id]");
  if (document.hidden || !cards.length) return;
  let list;
  try {
    list = (await api("/api/streams")).streams || [];
  } catch {
    return; /* signed out or the server is away: the next round tries again */
  }
  const byId = new Map(list.map((s) => [s.id, s]));
  for (const card of cards) {
    const spec = byId.get(card.dataset.streamId);
    if (!spec) continue;
    const prev = state.get(spec.id);
    state.set(spec.id, { spec, drawing: prev?.drawing ?? null });
    draw(card);
  }
}

document.addEventListener("load", (ev) => {
  if (ev.target instanceof HTMLImageElement && ev.target.classList.contains("mjpeg")) {
    const card = ev.target.closest(".stream[data-stream-id]");
    if (card && state.has(card.dataset.streamId)) draw(card);
  }
}, true);
setInterval(refresh, POLL_MS);
refresh();
