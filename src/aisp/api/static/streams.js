// The Streams section: one card per stream with the live annotated MJPEG view, its figures,
// start/stop/remove, and the form that adds a stream.

import { api, ticketUrl } from "./api.js";
import { hlsParts, stopHls, toggleHls } from "./hls-view.js";
import { $, $$, el, fmt, setText, statePill, toast } from "./ui.js";

const BLANK = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";
const VIEWABLE = new Set(["starting", "running", "reconnecting"]);
let app;

export function init(appState) {
  app = appState;
  $("#stream-list").addEventListener("click", onCardClick);
  $("#stream-form").addEventListener("submit", onAdd);
}

export function render(list) {
  const box = $("#stream-list");
  setText($("#streams-count"), list.length ? `${list.length} stream${list.length > 1 ? "s" : ""}` : "");
  const seen = new Set();
  for (const s of list) {
    seen.add(s.id);
    let card = box.querySelector(`.stream[data-stream-id="${CSS.escape(s.id)}"]`);
    if (!card) {
      card = buildCard(s.id);
      box.append(card);
    }
    update(card, s);
  }
  for (const card of $$(".stream[data-stream-id]", box)) {
    if (!seen.has(card.dataset.streamId)) {
      stopView(card, { keepHls: false });
      card.remove();
    }
  }
  const empty = box.querySelector(".empty");
  if (list.length && empty) empty.remove();
  if (!list.length && !empty) box.append(el("p", { class: "muted empty", text: "No streams." }));
}

function metric(name, label) {
  return el("div", {}, el("span", { class: "label", text: label }), el("span", { class: "value " + name, text: "–" }));
}

// After the live feed reconnects (server restart), reopen every MJPEG view.
export function resetViews() {
  for (const card of $$(".stream[data-stream-id]")) {
    if (card.querySelector("img.mjpeg").dataset.live === "1") {
      stopView(card);
      startView(card, card.dataset.streamId);
    }
  }
}

function buildCard(id) {
  const img = el("img", { class: "mjpeg", alt: `live view of ${id}`, hidden: true });
  img.addEventListener("error", () => {
    if (img.dataset.live !== "1") return;
    img.hidden = true;
    const ph = img.parentElement.querySelector(".placeholder");
    ph.textContent = "live view unavailable";
    ph.hidden = false;
  });
  const hls = hlsParts(id);
  const card = el(
    "article", { class: "stream", dataset: { streamId: id } },
    el("div", { class: "stream-head" },
      el("span", { class: "name", text: id, title: id }), el("span", { class: "state pill pill-muted", text: "…" }),
      hls.button),
    el("div", { class: "view" }, img, hls.video, el("span", { class: "placeholder", text: "stream not running" })),
    el("div", { class: "stream-metrics" },
      metric("in-fps", "Input FPS"), metric("out-fps", "Processed FPS"),
      metric("drops", "Drops"), metric("p99", "Latency p99")),
    el("div", { class: "err", hidden: true }),
    el("div", { class: "stream-foot" },
      el("span", { class: "meta" }),
      el("span", { class: "btn-row admin-only" },
        el("button", { class: "btn btn-small toggle", type: "button", dataset: { action: "stop" }, text: "Stop" }),
        el("button", { class: "btn btn-small btn-danger", type: "button", dataset: { action: "remove" }, text: "Remove" }))),
  );
  hls.button.addEventListener("click", () => toggleHls(card, id, (c) => startView(c, id), stopView));
  return card;
}

function update(card, s) {
  const state = s.state || "unknown";
  const pill = card.querySelector(".state");
  pill.className = "state " + statePill(state);
  setText(pill, state);
  card.dataset.state = state;
  setText(card.querySelector(".in-fps"), fmt.num(s.input_fps));
  setText(card.querySelector(".out-fps"), fmt.num(s.processed_fps));
  setText(card.querySelector(".drops"), fmt.int(s.dropped));
  setText(card.querySelector(".p99"), fmt.ms(s.latency_p99_ms));
  const meta = [s.source, (s.models || []).join(", "), s.priority ? `priority ${s.priority}` : ""].filter(Boolean);
  setText(card.querySelector(".meta"), meta.join(" · "));
  card.querySelector(".meta").title = meta.join(" · ");
  const err = card.querySelector(".err");
  err.hidden = !s.last_error;
  setText(err, s.last_error || "");
  const toggle = card.querySelector(".toggle");
  const running = VIEWABLE.has(state);
  toggle.dataset.action = running ? "stop" : "start";
  setText(toggle, running ? "Stop" : "Start");
  if (running) startView(card, s.id);
  else stopView(card, { keepHls: false });
}

// The MJPEG <img> holds one long HTTP response; it is connected only while the stream runs.
// Its URL carries a single-use ticket (never the key); each (re)connection mints a new one.
async function startView(card, id) {
  const img = card.querySelector("img.mjpeg");
  if (img.dataset.live === "1" || card._hls) return; // HLS plays instead (hls-view.js)
  img.dataset.live = "1";
  let url;
  try {
    url = await ticketUrl(`/api/streams/${encodeURIComponent(id)}/mjpeg`);
  } catch {
    img.dataset.live = "";
    const ph = card.querySelector(".placeholder");
    ph.textContent = "live view unavailable";
    ph.hidden = false;
    return;
  }
  if (img.dataset.live !== "1") return; // stopped while the ticket was minted
  img.src = url;
  img.hidden = false;
  const ph = card.querySelector(".placeholder");
  ph.hidden = true;
  ph.textContent = "stream not running";
}

function stopView(card, { keepHls = true } = {}) {
  if (!keepHls) stopHls(card);
  const img = card.querySelector("img.mjpeg");
  if (img.dataset.live !== "1") return;
  img.dataset.live = "";
  img.src = BLANK;
  img.hidden = true;
  card.querySelector(".placeholder").hidden = false;
}

async function onCardClick(ev) {
  const btn = ev.target.closest("button[data-action]");
  if (!btn) return;
  const card = btn.closest(".stream");
  const id = card.dataset.streamId;
  const action = btn.dataset.action;
  if (action === "remove" && !confirm(`Remove stream ${id}?`)) return;
  btn.disabled = true;
  try {
    const path = `/api/streams/${encodeURIComponent(id)}`;
    if (action === "remove") await api(path, { method: "DELETE" });
    else await api(`${path}/${action}`, { method: "POST" });
    if (action === "stop" || action === "remove") stopView(card, { keepHls: false });
    toast(`${action} ${id}: done`, "ok");
  } catch (err) {
    toast(`${action} ${id}: ${err.message}`, "error");
  } finally {
    btn.disabled = false;
  }
}

async function onAdd(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const data = new FormData(form);
  const models = app.pickerValues(form.querySelector("[data-picker]"));
  if (!models.length) return toast("Pick at least one model for the stream.", "error");
  const body = { source: String(data.get("source")).trim(), models, priority: Number(data.get("priority") || 0) };
  const id = String(data.get("id") || "").trim();
  if (id) body.id = id;
  const maxFps = String(data.get("max_fps") || "").trim();
  if (maxFps) body.max_fps = Number(maxFps);
  const live = String(data.get("live") || "");
  if (live) body.live = live === "true";
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const created = await api("/api/streams", { method: "POST", body });
    toast(`Stream ${created.id || id || ""} added`, "ok");
    form.reset();
  } catch (err) {
    toast("Add stream: " + err.message, "error");
  } finally {
    submit.disabled = false;
  }
}
